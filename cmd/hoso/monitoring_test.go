package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
)

// openWatchedMain is openMain with a fast deadline watcher.
func openWatchedMain(t *testing.T, dir string) *Main {
	t.Helper()
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	m.Config.DeadlineInterval = 20 * time.Millisecond
	m.Now = func() time.Time { return testNow }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func getMetrics(t *testing.T, m *Main) string {
	t.Helper()
	resp, err := http.Get(m.HTTP.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// waitMetric polls /metrics until it holds line.
func waitMetric(t *testing.T, m *Main, line string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := getMetrics(t, m)
		if strings.Contains(body, line+"\n") {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q; last:\n%s", line, grepLines(body, "hoso_"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func countOverdue(t *testing.T, m *Main, code string) int {
	t.Helper()
	n := 0
	err := m.Store.Read(context.Background(), 1, false, func(e hoso.LedgerEntry) error {
		ev, err := e.Event()
		if err == nil && ev.Dossier == code && ev.Type == hoso.EventOverdue {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMainDeadlinesAndMetrics: a dossier past due gets its overdue event
// from Main's watcher, once, also after a restart; /metrics counts it and
// shows the backlog by deadline state.
func TestMainDeadlinesAndMetrics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openWatchedMain(t, dir)
	// testNow is Monday 2024-03-04 10:00 in Vietnam.
	for _, body := range []string{
		`{"type":"received","dossier":"late-1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"1.001776","channel":"direct","due":"2024-03-01T16:00:00+07:00"}`,
		`{"type":"received","dossier":"soon-1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"online","due":"2024-03-04T16:00:00+07:00"}`,
	} {
		if code, b := post(t, m, "application/json", body); code != http.StatusCreated {
			t.Fatalf("POST: %d %s", code, b)
		}
	}
	if code, _ := post(t, m, "application/json", `{"type":"received","dossier":"bad"}`); code != http.StatusBadRequest {
		t.Fatalf("bad event: %d", code)
	}
	body := waitMetric(t, m, `hoso_events_appended_total{type="overdue"} 1`)
	for _, want := range []string{
		`hoso_events_appended_total{type="received"} 2`,
		`hoso_events_rejected_total{reason="invalid"} 1`,
		`hoso_open_dossiers{deadline_state="due_soon",district="004",level="ward",province="01",unit="00127"} 1`,
		`hoso_open_dossiers{deadline_state="overdue",district="004",level="ward",province="01",unit="00127"} 1`,
		`hoso_http_request_duration_seconds_count{code="201",route="POST /v1/events"} 2`,
		`hoso_stream_last_seq 3`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s; it has:\n%s", want, grepLines(body, "hoso_"))
		}
	}
	if n := countOverdue(t, m, "late-1"); n != 1 {
		t.Fatalf("%d overdue events, want 1", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the watcher runs again and appends nothing new.
	m2 := openWatchedMain(t, dir)
	waitReady(t, m2)
	if _, err := m2.Watcher.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countOverdue(t, m2, "late-1"); n != 1 {
		t.Fatalf("after restart: %d overdue events, want 1", n)
	}
	if n := countOverdue(t, m2, "soon-1"); n != 0 {
		t.Fatalf("a dossier not yet due got %d overdue events", n)
	}
}

// TestOperationsDocCoversEverything keeps docs/operations.md in step with
// the code: every flag of serve with its variable, every hoso metric, and
// a runbook section for every alert.
func TestOperationsDocCoversEverything(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var usage bytes.Buffer
	if err := NewMain().ParseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("serve -h: %v", err)
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage.String(), -1)
	if len(flags) < 10 {
		t.Fatalf("found only %d flags in:\n%s", len(flags), usage.String())
	}
	for _, f := range flags {
		for _, want := range []string{"`--" + f[1] + "`", "`" + envName(f[1]) + "`"} {
			if !bytes.Contains(doc, []byte(want)) {
				t.Errorf("docs/operations.md lacks %s", want)
			}
		}
	}

	m := openMain(t, filepath.Join(t.TempDir(), "data"))
	if code, b := post(t, m, "application/json", `{"type":"received","dossier":"d-1","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`); code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, b)
	}
	waitReady(t, m)
	mfs, err := m.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if name := mf.GetName(); strings.HasPrefix(name, "hoso_") {
			n++
			if !bytes.Contains(doc, []byte("| `"+name+"` |")) {
				t.Errorf("docs/operations.md has no row for the metric %s", name)
			}
		}
	}
	if n < 8 {
		t.Fatalf("only %d hoso metrics gathered", n)
	}

	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "hoso-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s+- alert: (\w+)$`).FindAllSubmatch(rules, -1)
	if len(alerts) == 0 {
		t.Fatal("no alerts in the rules file")
	}
	for _, a := range alerts {
		name := string(a[1])
		if !bytes.Contains(doc, []byte("\n### "+name+"\n")) {
			t.Errorf("docs/operations.md has no runbook section for %s", name)
		}
		if !bytes.Contains(rules, []byte("operations.md#"+strings.ToLower(name)+`"`)) {
			t.Errorf("alert %s does not link its runbook section", name)
		}
	}
}

// TestMetricsListen: with --metrics-listen, /metrics is served there and
// nowhere on the HTTP door.
func TestMetricsListen(t *testing.T) {
	m := NewMain()
	m.Config.MetricsListen = "127.0.0.1:0"
	openMainWith(t, m, filepath.Join(t.TempDir(), "data"))
	if _, ok := m.HTTP.Routes()["GET /metrics"]; ok {
		t.Error("the HTTP door still routes GET /metrics")
	}
	if code, b := request(t, m, "GET", "/metrics", "", "", ""); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the HTTP door: %d %.200s", code, b)
	}
	if code, b := post(t, m, "application/json", `{"type":"received","dossier":"d-metrics","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`); code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, b)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(m.MetricsHTTP.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, b := get("/metrics"); code != http.StatusOK || !strings.Contains(b, `hoso_events_appended_total{type="received"} 1`) {
		t.Errorf("GET /metrics on --metrics-listen: %d %.300s", code, b)
	}
	// Nothing else is served there, not even what the door serves publicly.
	for _, path := range []string{"/healthz", "/v1/checkpoint", "/v1/report?unit=00127"} {
		if code, _ := get(path); code != http.StatusNotFound {
			t.Errorf("GET %s on --metrics-listen: %d, want 404", path, code)
		}
	}
	url := m.MetricsHTTP.URL()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(url + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("the metrics listener still answers after Close")
	}
}
