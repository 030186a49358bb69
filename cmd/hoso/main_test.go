package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// testNow is a Monday morning in Vietnam.
var testNow = time.Date(2024, 3, 4, 3, 0, 0, 0, time.UTC)

// openMain runs the whole binary's Main on free ports in a temp dir.
func openMain(t *testing.T, dir string) *Main {
	t.Helper()
	return openMainWith(t, NewMain(), dir)
}

// openMainWith is openMain of a Main whose Config the test has set.
func openMainWith(t *testing.T, m *Main, dir string) *Main {
	t.Helper()
	m.Config.DataDir = dir
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	m.Now = func() time.Time { return testNow }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func post(t *testing.T, m *Main, contentType, body string) (int, []byte) {
	t.Helper()
	return request(t, m, http.MethodPost, "/v1/events", tokenOf(t, m, testDesk), contentType, body)
}

func TestMainEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openMain(t, dir)

	// HTTP: one event.
	code, body := post(t, m, "application/json", `{"type":"received","dossier":"000.00.31.H26-240304-0001","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	var res hoso.AppendResult
	if err := json.Unmarshal(body, &res); err != nil || res.Seq != 1 || res.Version != 1 || res.Duplicate {
		t.Fatalf("POST answer %s (%v)", body, err)
	}

	// NATS: the same payload shapes through hoso.ingest.
	nc := deskConn(t, m)
	reply, err := nc.RequestMsg(ingestMsg(t, m, []byte(`{"type":"transferred","dossier":"000.00.31.H26-240304-0001","unit":"00127","to_unit":"004","at":"2024-03-04T10:00:00+07:00"}`)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(reply.Data, &res); err != nil || res.Seq != 2 || res.Version != 2 {
		t.Fatalf("NATS answer %s (%v)", reply.Data, err)
	}
	// A NATS error answer carries the same JSON body as HTTP.
	reply, err = nc.RequestMsg(ingestMsg(t, m, []byte(`{"type":"resolved","dossier":"nope","unit":"004","at":"2024-03-04T10:00:00+07:00"}`)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var eb hoso.ErrorBody
	if err := json.Unmarshal(reply.Data, &eb); err != nil || eb.Error.Code != hoso.ENOTFOUND || reply.Header.Get(micro.ErrorCodeHeader) != "404" {
		t.Fatalf("NATS error answer %s %v (%v)", reply.Data, reply.Header, err)
	}
	// NDJSON batch over NATS.
	msg := ingestMsg(t, m, nil)
	msg.Header.Set("Content-Type", "application/x-ndjson")
	// The clock stands at 10:00 local: resolved two minutes ahead is within
	// the five allowed; returned before resolved breaks per-dossier order.
	msg.Data = []byte(`{"type":"resolved","dossier":"000.00.31.H26-240304-0001","unit":"004","at":"2024-03-04T10:02:00+07:00"}
{"type":"returned","dossier":"000.00.31.H26-240304-0001","unit":"004","at":"2024-03-04T10:01:00+07:00"}`)
	reply, err = nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var batch hoso.BatchAnswer
	if err := json.Unmarshal(reply.Data, &batch); err != nil || len(batch.Results) != 2 ||
		batch.Results[0].AppendResult == nil || batch.Results[0].Seq != 3 ||
		batch.Results[1].Error == nil || batch.Results[1].Error.Field != "at" {
		t.Fatalf("NATS batch answer %s (%v)", reply.Data, err)
	}

	// The service is visible to `nats micro` tools.
	info, err := nc.Request("$SRV.INFO.hoso", nil, 5*time.Second)
	if err != nil || !bytes.Contains(info.Data, []byte(`"hoso.ingest"`)) {
		t.Fatalf("$SRV.INFO.hoso: %s %v", info.Data, err)
	}

	// Ready once the projection has caught up with the stream.
	waitReady(t, m)

	// The read endpoints answer from the read model.
	for path, want := range map[string]string{
		"/v1/report?unit=004&level=district&from=2024-03-01&to=2024-03-31": `"as_of_seq":3`,
		"/v1/dossiers?unit=004&state=resolved":                             `"code":"000.00.31.H26-240304-0001"`,
		"/v1/units/004":                                                    `"code":"00127"`,
	} {
		code, b := get(t, m, path)
		if code != 200 || !bytes.Contains(b, []byte(want)) {
			t.Errorf("GET %s: %d %s", path, code, b)
		}
	}

	// Read it back over HTTP.
	status, b := get(t, m, "/v1/dossiers/000.00.31.H26-240304-0001")
	var view struct {
		State  string `json:"state"`
		Owner  string `json:"owner"`
		Result string `json:"result"`
		Events []struct {
			Seq     uint64 `json:"seq"`
			Version int    `json:"version"`
			Type    string `json:"type"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &view); err != nil || status != 200 {
		t.Fatalf("GET dossier: %d %s", status, b)
	}
	if view.State != "resolved" || view.Owner != "004" || view.Result != "early" || len(view.Events) != 3 || view.Events[2].Seq != 3 {
		t.Fatalf("dossier %s", b)
	}

	// Restart on the same data dir: the ledger is still there.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := openMain(t, dir)
	v, err := m2.Ingester.FindDossier(context.Background(), "000.00.31.H26-240304-0001")
	if err != nil || len(v.Events) != 3 {
		t.Fatalf("after restart: %v %v", v, err)
	}
	code, body = post(t, m2, "application/json", `{"type":"received","dossier":"000.00.31.H26-240304-0001","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`)
	if code != http.StatusCreated || !bytes.Contains(body, []byte(`"duplicate":true`)) {
		t.Fatalf("re-send after restart: %d %s", code, body)
	}
	// The read model kept its position across the restart.
	waitReady(t, m2)
	d, err := m2.DB.Dossier(context.Background(), "000.00.31.H26-240304-0001")
	if err != nil || d.State != hoso.StateResolved || d.LastSeq != 3 || m2.Projector.AppliedSeq() != 3 {
		t.Fatalf("read model after restart: %+v %v (applied %d)", d, err, m2.Projector.AppliedSeq())
	}
}

// waitReady polls /readyz until it answers 200; before that it must answer
// 503 with the JSON error body.
func waitReady(t *testing.T, m *Main) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.HTTP.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return
		case http.StatusServiceUnavailable:
			if !bytes.Contains(b, []byte(`"unavailable"`)) {
				t.Fatalf("/readyz 503 body %s", b)
			}
		default:
			t.Fatalf("/readyz: %d %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d: %s", resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A read model built by another projection version is rebuilt from the
// stream when Main opens, before it serves reads.
func TestMainRebuildsStaleReadModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openMain(t, dir)
	for i, ev := range []string{
		`{"type":"received","dossier":"R1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`,
		`{"type":"received","dossier":"R2","unit":"00130","at":"2024-03-04T09:10:00+07:00","procedure":"1.001776","channel":"online","days":3}`,
		`{"type":"resolved","dossier":"R1","unit":"00127","at":"2024-03-04T09:20:00+07:00"}`,
	} {
		if code, body := post(t, m, "application/json", ev); code != http.StatusCreated {
			t.Fatalf("event %d: %d %s", i, code, body)
		}
	}
	waitReady(t, m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Stamp the file as built by an older projection.
	path := filepath.Join(dir, ReadModelFile)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE meta SET value = '0' WHERE key = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if stale, err := projections.NeedsRebuild(path); err != nil || !stale {
		t.Fatalf("NeedsRebuild after stamping: %v %v", stale, err)
	}

	m2 := openMain(t, dir)
	if stale, err := projections.NeedsRebuild(path); err != nil || stale {
		t.Fatalf("NeedsRebuild after start: %v %v", stale, err)
	}
	if v, err := m2.DB.SchemaVersion(context.Background()); err != nil || v != projections.SchemaVersion {
		t.Fatalf("schema version %d %v", v, err)
	}
	if got := m2.Projector.AppliedSeq(); got != 3 {
		t.Fatalf("applied seq after rebuild %d, want 3", got)
	}
	for code, state := range map[string]hoso.State{"R1": hoso.StateResolved, "R2": hoso.StateProcessing} {
		d, err := m2.DB.Dossier(context.Background(), code)
		if err != nil || d.State != state {
			t.Errorf("%s after rebuild: %+v %v", code, d, err)
		}
	}
	waitReady(t, m2)
}

func TestMainBadInput(t *testing.T) {
	m := openMain(t, t.TempDir())
	ok := `{"type":"received","dossier":"X1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`
	if code, body := post(t, m, "application/json", ok); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	tests := []struct {
		name, ctype, body string
		status            int
		field             string
	}{
		{"unknown field", "application/json", `{"type":"resolved","dossier":"X1","unit":"00127","at":"2024-03-04T09:30:00+07:00","colour":"red"}`, 400, "colour"},
		{"unknown unit", "application/json", `{"type":"received","dossier":"X2","unit":"12345","at":"2024-03-04T09:00:00+07:00","procedure":"p","channel":"direct","days":3}`, 400, "unit"},
		{"bad channel", "application/json", `{"type":"received","dossier":"X2","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"p","channel":"fax","days":3}`, 400, "channel"},
		{"at in the future", "application/json", `{"type":"resolved","dossier":"X1","unit":"00127","at":"2024-03-04T11:00:00+07:00"}`, 400, "at"},
		{"both due and days", "application/json", `{"type":"received","dossier":"X2","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"p","channel":"direct","days":3,"due":"2024-03-08T09:00:00+07:00"}`, 400, "due"},
		{"malformed JSON", "application/json", `{"type":`, 400, ""},
		{"unknown dossier", "application/json", `{"type":"resolved","dossier":"X9","unit":"00127","at":"2024-03-04T09:30:00+07:00"}`, 404, ""},
		{"expected_version mismatch", "application/json", `{"type":"resolved","dossier":"X1","unit":"00127","at":"2024-03-04T09:30:00+07:00","expected_version":5}`, 409, "expected_version"},
		{"transition not allowed", "application/json", `{"type":"returned","dossier":"X1","unit":"00127","at":"2024-03-04T09:30:00+07:00"}`, 400, "type"},
		{"wrong content type", "text/plain", ok, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := m.Store.LastSeq(context.Background())
			code, body := post(t, m, tt.ctype, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, body)
			}
			var eb hoso.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("error body %s", body)
			}
			if eb.Error.Field != tt.field || (tt.field != "" && !strings.Contains(eb.Error.Message, tt.field)) {
				t.Errorf("error does not name %q: %s", tt.field, body)
			}
			if tt.name == "transition not allowed" && !strings.Contains(eb.Error.Message, "processing") {
				t.Errorf("error does not name the current state: %s", body)
			}
			if after, _ := m.Store.LastSeq(context.Background()); after != before {
				t.Errorf("stream moved from %d to %d", before, after)
			}
		})
	}
	// A body past the bound is 413.
	m.HTTP.MaxBodyBytes = 1 << 10
	code, body := post(t, m, "application/x-ndjson", strings.Repeat(ok+"\n", 20))
	if code != 413 || !strings.Contains(string(body), "too_large") {
		t.Errorf("large body: %d %s", code, body)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("HOSO_HTTP", "127.0.0.1:9999")
	t.Setenv("HOSO_NATS_URL", "nats://127.0.0.1:4333")
	m := NewMain()
	if err := m.ParseFlags([]string{"--data", "d1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if m.Config.HTTPAddr != "127.0.0.1:9999" || m.Config.NATSURL != "nats://127.0.0.1:4333" || m.Config.DataDir != "d1" {
		t.Errorf("config %+v", m.Config)
	}
	t.Setenv("HOSO_DATA", "from-env")
	m = NewMain()
	if err := m.ParseFlags([]string{"--data", "from-flag"}, io.Discard); err != nil || m.Config.DataDir != "from-flag" {
		t.Errorf("a flag must win over its environment variable: %q %v", m.Config.DataDir, err)
	}
	t.Setenv("HOSO_REPLICAS", "three")
	if err := NewMain().ParseFlags(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "HOSO_REPLICAS") {
		t.Errorf("bad env value: %v", err)
	}
}

// deskConn connects to m's embedded server as a desk system does, with the
// desk role's NKey, closed when the test ends.
func deskConn(t *testing.T, m *Main) *nats.Conn {
	t.Helper()
	deskAuth, err := nats.NkeyOptionFromSeed(m.Store.DeskCredentials())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(m.Store.ClientURL(), deskAuth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
