package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/hoso-ledger/hoso/projections"
)

// openDemo opens Main with a small demo preload and waits for it to finish.
func openDemo(t *testing.T, dir string) *Main {
	t.Helper()
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	m.Config.Demo = true
	m.Config.DemoDossiers = 300
	// The deadline watcher would append overdue events for the demo's open
	// dossiers past due; these tests count the preload's own events.
	m.Config.DeadlineInterval = 0
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	resp, err := http.Get(m.HTTP.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz during the preload: %d", resp.StatusCode)
	}
	m.demoWG.Wait()
	return m
}

func TestDemoPreloadOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openDemo(t, dir)
	if _, err := os.Stat(demoMarker(dir)); err != nil {
		t.Fatalf("no marker after the preload: %v", err)
	}
	first, err := m.Store.LastSeq(context.Background())
	if err != nil || first < 300 {
		t.Fatalf("stream at %d after preloading 300 dossiers (%v)", first, err)
	}
	waitCaughtUp(t, m)
	rep, err := m.DB.Report(context.Background(), m.Units, projections.ReportQuery{Unit: demoUnit, Level: "district", From: demoFrom, To: demoTo})
	if err != nil || rep.Total.Received == 0 || rep.Total.Resolved == 0 {
		t.Fatalf("demo report: %+v (%v)", rep.Total, err)
	}
	m.Close()

	// With the marker: nothing is preloaded again.
	m = openDemo(t, dir)
	if last, _ := m.Store.LastSeq(context.Background()); last != first {
		t.Fatalf("stream moved from %d to %d on a second start", first, last)
	}
	m.Close()

	// Without it (an interrupted preload): it runs again and appends nothing.
	if err := os.Remove(demoMarker(dir)); err != nil {
		t.Fatal(err)
	}
	m = openDemo(t, dir)
	if last, _ := m.Store.LastSeq(context.Background()); last != first {
		t.Fatalf("stream moved from %d to %d on a re-run", first, last)
	}
	if _, err := os.Stat(demoMarker(dir)); err != nil {
		t.Fatalf("no marker after the re-run: %v", err)
	}
}
