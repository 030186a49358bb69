package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/projections"
)

// ReadModelFile is the read model's file name inside the data directory.
const ReadModelFile = "readmodel.db"

// readModelPath is where the read model of a data directory lives.
func readModelPath(dataDir string) string { return filepath.Join(dataDir, ReadModelFile) }

// rebuildFromEventsAtLeast is the stream length from which a missing read
// model is built with projections.Rebuild rather than by the projector.
const rebuildFromEventsAtLeast = 10_000

// prepareReadModel rebuilds the read model from the stream when it was
// built by another version of the projection, or is missing for a long
// stream. Open runs it before the Merkle tree starts catching up, so the
// two whole-stream reads of a cold start of a large ledger follow each
// other instead of sharing the cores and the server's block caches.
func (m *Main) prepareReadModel(ctx context.Context) error {
	path := readModelPath(m.Config.DataDir)
	stale, err := projections.NeedsRebuild(path)
	if err != nil {
		return fmt.Errorf("read model: %w", err)
	}
	if !stale {
		// A ledger imported while no read model was kept (hoso import
		// --data, an ingest-only deployment) is built at rebuild speed
		// rather than followed event by event from the first.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			last, err := m.Store.LastSeq(ctx)
			if err != nil {
				return fmt.Errorf("read model: %w", err)
			}
			if stale = last >= rebuildFromEventsAtLeast; stale {
				m.Logger.Info("no read model for a ledger of many events: building it from the stream", "path", path, "events", last)
			}
		}
	} else {
		m.Logger.Info("read model was built by another projection version: rebuilding from the stream", "path", path)
	}
	if !stale {
		return nil
	}
	return projections.Rebuild(ctx, m.Store, m.Units, path, rebuildProgress(func(done, total uint64, rate float64, eta time.Duration) {
		m.Logger.Info("rebuilding read model", "done", done, "total", total, "events_per_s", int64(rate), "eta", eta)
	}))
}

// openReadModel opens the read model (prepareReadModel has made it
// current) and starts the projector. The projector runs until
// closeReadModel; a failing batch is retried with a growing pause
// (/readyz answers 503 meanwhile).
func (m *Main) openReadModel() (err error) {
	if m.DB, err = projections.Open(readModelPath(m.Config.DataDir)); err != nil {
		return err
	}
	m.Projector = projections.NewProjector(m.DB, m.Units, projections.WithLogger(m.Logger))
	runCtx, cancel := context.WithCancel(context.Background())
	m.projectorCancel = cancel
	m.projectorWG.Go(func() { m.runProjector(runCtx) })
	return nil
}

// runProjector keeps the projector following the stream until ctx ends.
func (m *Main) runProjector(ctx context.Context) {
	const minPause, maxPause = time.Second, time.Minute
	pause := minPause
	for {
		start := time.Now()
		err := m.Projector.Run(ctx, m.Store)
		if ctx.Err() != nil {
			return
		}
		m.Logger.Error("projector stopped; retrying", "err", err, "applied_seq", m.Projector.AppliedSeq(), "retry_in", pause)
		if time.Since(start) > maxPause {
			pause = minPause // it ran fine for a while: a new fault
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// mountReadModel serves reads from the read model and readiness from the
// projector's position.
func (m *Main) mountReadModel() {
	m.HTTP.Ready = m.Projector.CaughtUp
	m.HTTP.Dossiers = &projections.Dossiers{DB: m.DB, History: m.Store, Now: m.Now}
	reads := &projections.Reads{DB: m.DB, Units: m.Units, Calendar: m.Calendar, Now: m.Now, DueSoon: m.Config.DueSoon}
	m.HTTP.MountReads(handlers.Reads{Reports: reads, Dossiers: reads, Units: reads})
}

// mountIngestOnly makes the HTTP door that of an ingest-only process: the
// read routes say where reads are served, and /readyz is ready as soon as
// the stream answers, since there is no projection to catch up.
func (m *Main) mountIngestOnly() {
	m.HTTP.MountIngestOnly()
	m.HTTP.Ready = func(ctx context.Context) error {
		_, err := m.Store.LastSeq(ctx)
		return err
	}
}

// closeReadModel stops the projector, then closes the file; it runs before
// the store closes so that the projector never reads a closed stream.
func (m *Main) closeReadModel() error {
	if m.projectorCancel != nil {
		m.projectorCancel()
		m.projectorWG.Wait()
	}
	if m.DB != nil {
		return m.DB.Close()
	}
	return nil
}

// rebuildProgress throttles a rebuild's progress to one report every two
// seconds and the last one, adding the time left at the current rate.
func rebuildProgress(report func(done, total uint64, rate float64, eta time.Duration)) func(done, total uint64, rate float64) {
	var last time.Time
	return func(done, total uint64, rate float64) {
		if done < total && time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		eta := time.Duration(0)
		if rate > 0 {
			eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
		}
		report(done, total, rate, eta)
	}
}
