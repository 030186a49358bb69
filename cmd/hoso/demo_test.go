package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestDemoThenWatcher: with the deadline watcher on, the preload runs to
// the end with nothing refused (the watcher starts only after it), then the
// watcher marks the demo's open dossiers past due.
func TestDemoThenWatcher(t *testing.T) {
	m := NewMain()
	m.Config.DataDir = filepath.Join(t.TempDir(), "data")
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	m.Config.Demo = true
	m.Config.DemoDossiers = 300
	m.Config.DeadlineInterval = 20 * time.Millisecond
	var logs syncBuffer
	m.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.demoWG.Wait()
	if m.Watcher == nil {
		t.Fatal("the watcher was not opened after the preload")
	}
	if s := logs.String(); !strings.Contains(s, "demo preloaded") || strings.Contains(s, "event refused") {
		t.Fatalf("preload log:\n%s", s)
	}
	loaded, _ := m.Store.LastSeq(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if last, _ := m.Store.LastSeq(ctx); last > loaded {
			return // overdue events appended after the preload
		}
		select {
		case <-ctx.Done():
			t.Fatal("the watcher appended nothing for the demo's overdue dossiers")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
