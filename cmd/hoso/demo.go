package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/simulate"
)

// The demo preload: a simulated year of Hà Nội (province 01) — its
// districts, wards and the province's own desk — in 2024, the last whole
// year before the 2025 reform removed districts.
const (
	demoUnit       = "01"
	demoFrom       = "2024-01-01"
	demoTo         = "2024-12-31"
	demoSeed       = 2024
	demoMarkerFile = "demo-preloaded"
	// DefaultDemoDossiers keeps the preload to about a minute on a laptop.
	DefaultDemoDossiers = 30_000
	demoBatch           = 1000
)

// demoMarker is written once the preload has finished; its presence skips
// the preload on later starts. An interrupted preload has no marker and
// runs again: its events carry ids, so what was appended is not appended
// twice.
func demoMarker(dataDir string) string { return filepath.Join(dataDir, demoMarkerFile) }

// startDemo preloads the demo in a goroutine Main owns, so the server
// answers at once; reports fill in as the projector follows. It answers
// whether it started: then the goroutine opens the deadline watcher when
// the preload ends.
func (m *Main) startDemo() bool {
	if !m.Config.Demo {
		return false
	}
	marker := demoMarker(m.Config.DataDir)
	if _, err := os.Stat(marker); err == nil {
		m.Logger.Info("demo data already preloaded", "marker", marker)
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.demoCancel = cancel
	m.demoWG.Go(func() {
		start := time.Now()
		n, err := m.preloadDemo(ctx)
		switch {
		case errors.Is(err, context.Canceled):
			m.Logger.Info("demo preload interrupted; it resumes at the next start", "events", n)
			return
		case err != nil:
			m.Logger.Error("demo preload failed", "err", err, "events", n)
		default:
			if err := os.WriteFile(marker, fmt.Appendf(nil, "unit=%s from=%s to=%s seed=%d dossiers=%d\n",
				demoUnit, demoFrom, demoTo, demoSeed, m.Config.DemoDossiers), 0o640); err != nil {
				m.Logger.Error("demo preload: marker", "err", err)
			}
			m.Logger.Info("demo preloaded", "events", n, "took", time.Since(start).Round(time.Millisecond),
				"try", m.HTTP.URL()+"/?unit="+demoUnit+"&level=district&from="+demoFrom+"&to="+demoTo)
		}
		if err := m.openWatcher(); err != nil {
			m.Logger.Error("deadline watcher", "err", err)
		}
	})
	return true
}

// preloadDemo appends the simulated year through the ingest service. An
// event the ledger refuses (the data directory already held other events
// for a dossier) is counted and skipped; only a failure of the ledger stops
// the preload.
func (m *Main) preloadDemo(ctx context.Context) (int64, error) {
	from, _ := time.Parse(time.DateOnly, demoFrom)
	to, _ := time.Parse(time.DateOnly, demoTo)
	g, err := simulate.New(m.Units, m.Calendar, simulate.Config{
		Scope: demoUnit, From: from, To: to, Dossiers: m.Config.DemoDossiers, Seed: demoSeed,
		LateShare: simulate.DefaultLateShare, Now: m.Now().Add(-time.Minute),
	})
	if err != nil {
		return 0, err
	}
	m.Logger.Info("demo preload: simulating a year of Hà Nội", "dossiers", m.Config.DemoDossiers, "from", demoFrom, "to", demoTo)
	var sent, appended, refused int64
	last := time.Now()
	batch := make([]*hoso.Event, 0, demoBatch)
	flush := func() error {
		for _, r := range m.Events.AppendBatch(ctx, batch) {
			if r.Err != nil {
				if err := ctx.Err(); err != nil {
					return err
				}
				if hoso.ErrorCode(r.Err) == hoso.EINTERNAL {
					return r.Err
				}
				if refused++; refused <= 10 {
					m.Logger.Warn("demo preload: event refused", "err", r.Err)
				}
				continue
			}
			if !r.Result.Duplicate {
				appended++
			}
		}
		sent += int64(len(batch))
		batch = batch[:0]
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			m.Logger.Info("demo preload", "events", sent, "appended", appended, "refused", refused)
		}
		return nil
	}
	_, err = g.Run(ctx, func(e *hoso.Event) error {
		batch = append(batch, e)
		if len(batch) == demoBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return sent, err
}

// stopDemo interrupts a running preload and waits for it.
func (m *Main) stopDemo() {
	if m.demoCancel != nil {
		m.demoCancel()
	}
	m.demoWG.Wait()
}
