package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
)

// An ingest-only process takes events through both doors into the stream,
// and answers reads with an error that sends the reader elsewhere.
func TestMainIngestOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	m.Config.ReadModel = false
	m.Now = func() time.Time { return testNow }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if m.DB != nil || m.Projector != nil || m.Watcher != nil || m.Transparency != nil {
		t.Fatalf("ingest only, yet opened: read model %v, projector %v, watcher %v, tree %v", m.DB, m.Projector, m.Watcher, m.Transparency)
	}

	// HTTP: one event, then an NDJSON batch.
	code, body := post(t, m, "application/json", `{"type":"received","dossier":"IO-1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	code, body = post(t, m, "application/x-ndjson", `{"type":"transferred","dossier":"IO-1","unit":"00127","to_unit":"004","at":"2024-03-04T09:10:00+07:00"}
{"type":"received","dossier":"IO-2","unit":"00130","at":"2024-03-04T09:20:00+07:00","procedure":"1.001776","channel":"direct","days":2}`)
	var batch hoso.BatchAnswer
	if err := json.Unmarshal(body, &batch); err != nil || code != http.StatusOK || len(batch.Results) != 2 ||
		batch.Results[0].AppendResult == nil || batch.Results[1].AppendResult == nil {
		t.Fatalf("POST batch: %d %s (%v)", code, body, err)
	}

	// NATS: one event, then a batch with a bad event, which changes nothing.
	nc := deskConn(t, m)
	reply, err := nc.RequestMsg(ingestMsg(t, m, []byte(`{"type":"resolved","dossier":"IO-1","unit":"004","at":"2024-03-04T09:30:00+07:00"}`)), 5*time.Second)
	var res hoso.AppendResult
	if err != nil || json.Unmarshal(reply.Data, &res) != nil || res.Version != 3 {
		t.Fatalf("NATS answer %v (%v)", reply, err)
	}
	msg := ingestMsg(t, m, nil)
	msg.Header.Set("Content-Type", "application/x-ndjson")
	msg.Data = []byte(`{"type":"resolved","dossier":"IO-2","unit":"00130","at":"2024-03-04T09:40:00+07:00","outcome":"rejected"}
{"type":"returned","dossier":"IO-2","unit":"00130","at":"2024-03-04T09:35:00+07:00","colour":"red"}`)
	if reply, err = nc.RequestMsg(msg, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	batch = hoso.BatchAnswer{}
	if err := json.Unmarshal(reply.Data, &batch); err != nil || len(batch.Results) != 2 ||
		batch.Results[0].AppendResult == nil || batch.Results[1].Error == nil || batch.Results[1].Error.Field != "colour" {
		t.Fatalf("NATS batch answer %s (%v)", reply.Data, err)
	}

	// The stream holds the five appended events, in order per dossier.
	var got []string
	err = m.Store.Read(context.Background(), 1, false, func(le hoso.LedgerEntry) error {
		e, err := le.Event()
		if err != nil {
			return err
		}
		got = append(got, e.Dossier+" "+string(e.Type))
		return nil
	})
	want := []string{"IO-1 received", "IO-1 transferred", "IO-2 received", "IO-1 resolved", "IO-2 resolved"}
	if err != nil || strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("stream holds %q (%v), want %q", got, err, want)
	}

	// Reads answer 503 saying why; readiness is the stream's.
	for _, path := range []string{"/v1/dossiers/IO-1", "/v1/report?unit=004&from=2024-03-01&to=2024-03-31", "/v1/checkpoint", "/"} {
		status, b := get(t, m, path)
		var eb hoso.ErrorBody
		if err := json.Unmarshal(b, &eb); err != nil || status != http.StatusServiceUnavailable || !strings.Contains(eb.Error.Message, "ingest only") {
			t.Errorf("GET %s: %d %s", path, status, b)
		}
	}
	if status, b := get(t, m, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz: %d %s", status, b)
	}
	// /metrics has the ingest figures and none of the read model's.
	status, b := get(t, m, "/metrics")
	if status != http.StatusOK || !bytes.Contains(b, []byte(`hoso_events_appended_total{type="received"} 2`)) ||
		!bytes.Contains(b, []byte(`hoso_events_rejected_total{reason="invalid"} 1`)) || bytes.Contains(b, []byte("hoso_projection_")) {
		t.Errorf("/metrics: %d %s", status, b)
	}
	// Nothing of the read model or the tree on disk.
	for _, name := range []string{ReadModelFile, "tree.hashes", "checkpoint.key"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s in the data directory of an ingest-only process (%v)", name, err)
		}
	}
}

func TestIngestOnlyFlags(t *testing.T) {
	t.Setenv("HOSO_READ_MODEL", "false")
	m := NewMain()
	if err := m.ParseFlags(nil, io.Discard); err != nil || m.Config.ReadModel {
		t.Fatalf("HOSO_READ_MODEL=false: read model %v (%v)", m.Config.ReadModel, err)
	}
	m.Config.DataDir = t.TempDir()
	m.Config.Demo = true
	m.Logger = slog.New(slog.DiscardHandler)
	if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "--demo") {
		m.Close()
		t.Fatalf("--demo with --read-model=false: %v", err)
	}
}
