package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso/eventstore"
)

// A ledger whose stream reached --stream-max-bytes answers POST /v1/events
// with 503 naming the cause, counts the refusal and raises
// hoso_stream_storage_full; once the operator raises the cap it takes the
// refused event, the gauge goes back to 0, and the ledger verifies.
func TestServeStreamFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "error"
	m.Config.StreamMaxBytes = 8 << 10
	m.Now = func() time.Time { return testNow }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	event := func(i int) string {
		return fmt.Sprintf(`{"type":"received","dossier":"full-%d","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`, i)
	}
	if got := metricLine(t, m, "hoso_stream_storage_full"); got != "hoso_stream_storage_full 0" {
		t.Fatalf("before: %s", got)
	}
	refused := -1
	for i := 0; refused < 0; i++ {
		if i > 1000 {
			t.Fatal("the capped stream never filled")
		}
		code, body := post(t, m, "application/json", event(i))
		switch code {
		case http.StatusCreated:
		case http.StatusServiceUnavailable:
			if !strings.Contains(string(body), `"code":"unavailable"`) || !strings.Contains(string(body), "storage is full") || !strings.Contains(string(body), "maximum bytes") {
				t.Fatalf("503 body %s", body)
			}
			refused = i
		default:
			t.Fatalf("event %d: %d %s", i, code, body)
		}
	}
	if got := metricLine(t, m, "hoso_stream_storage_full"); got != "hoso_stream_storage_full 1" {
		t.Errorf("full: %s", got)
	}
	if got := metricLine(t, m, `hoso_events_rejected_total{reason="unavailable"}`); got != `hoso_events_rejected_total{reason="unavailable"} 1` {
		t.Errorf("full: %s", got)
	}

	ctx := context.Background()
	st, err := m.Store.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxBytes = 1 << 20
	if _, err := m.Store.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, m, "application/json", event(refused)); code != http.StatusCreated {
		t.Fatalf("after the cap was raised: %d %s", code, body)
	}
	if got := metricLine(t, m, "hoso_stream_storage_full"); got != "hoso_stream_storage_full 0" {
		t.Errorf("after: %s", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(t, "--data", dir); err != nil || !strings.Contains(out, fmt.Sprintf("ok: %d events", refused+1)) {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}
