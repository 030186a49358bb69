package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
)

// OverdueCandidate is a processing dossier whose due has passed and that
// has no overdue event for that due yet.
type OverdueCandidate struct {
	Code  string
	Owner string
	Due   time.Time
}

// OverdueCandidates returns up to limit processing dossiers due before now
// without an overdue event for their current due, in order of (due, code)
// after the cursor (after, afterCode); a zero after starts at the beginning.
//
// A dossier that received another event after its due had passed is marked
// too: an overdue event is dated at the due and is exempt from the order of
// times (hoso.Dossier.Apply).
func (db *DB) OverdueCandidates(ctx context.Context, now time.Time, after time.Time, afterCode string, limit int) ([]OverdueCandidate, error) {
	r, done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	var from int64 = -1 << 63
	if !after.IsZero() {
		from = after.UnixNano()
	}
	rows, err := r.QueryContext(ctx, `SELECT code, owner, due FROM dossiers INDEXED BY dossiers_state_due
		WHERE state = 'processing' AND due < ?1 AND overdue_marked = 0
		AND (due, code) > (?2, ?3)
		ORDER BY due, code LIMIT ?4`, now.UnixNano(), from, afterCode, limit)
	if err != nil {
		return nil, fmt.Errorf("overdue candidates: %w", err)
	}
	defer rows.Close()
	var out []OverdueCandidate
	for rows.Next() {
		var c OverdueCandidate
		var due int64
		if err := rows.Scan(&c.Code, &c.Owner, &due); err != nil {
			return nil, fmt.Errorf("overdue candidates: %w", err)
		}
		c.Due = fromNanos(due)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("overdue candidates: %w", err)
	}
	return out, nil
}

// Watcher defaults.
const (
	DefaultWatchInterval = time.Minute
	DefaultWatchBatch    = 500
)

// Watcher is the deadline watcher: every Interval it appends one overdue
// event (hoso.NewOverdueEvent) for each processing dossier of the read model
// whose due has passed, through the same validating EventService as any
// other event. The events' ids derive from dossier and due, so watchers in
// several processes, or one restarted, never write a second event for the
// same due: the ledger answers the repeat as a duplicate.
type Watcher struct {
	DB     *DB
	Events hoso.EventService
	Now    hoso.Clock
	Logger *slog.Logger
	// Interval is the time between passes; DefaultWatchInterval when 0.
	Interval time.Duration
	// Batch is how many candidates one query reads; DefaultWatchBatch when 0.
	Batch int
	// Ready, when set, gates each pass: a pass is skipped while it answers
	// an error (the read model is behind the stream), so that the watcher
	// does not propose events for states it has not seen yet.
	Ready func(context.Context) error

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open starts the watcher's loop; Close stops it.
func (w *Watcher) Open() error {
	if w.DB == nil || w.Events == nil {
		return errors.New("deadline watcher: DB and Events are required")
	}
	if w.cancel != nil {
		return errors.New("deadline watcher: already open")
	}
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if _, err := w.Pass(ctx); err != nil && ctx.Err() == nil {
				w.logger().Warn("deadline watcher: pass failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return nil
}

// Close stops the loop and waits for a pass in progress to end.
func (w *Watcher) Close() error {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
	return nil
}

func (w *Watcher) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

// Pass appends the overdue events due now and answers how many it appended
// (duplicates, written by another watcher first, are not counted). An event
// the ledger refuses (the read model was behind: the dossier moved on) is
// logged and skipped; only a failure to read the read model or to reach the
// ledger stops the pass.
func (w *Watcher) Pass(ctx context.Context) (int, error) {
	if w.Ready != nil {
		if err := w.Ready(ctx); err != nil {
			w.logger().Debug("deadline watcher: read model not caught up, pass skipped", "err", err)
			return 0, nil
		}
	}
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	batch := w.Batch
	if batch <= 0 {
		batch = DefaultWatchBatch
	}
	appended := 0
	var after time.Time
	var afterCode string
	for {
		cands, err := w.DB.OverdueCandidates(ctx, now, after, afterCode, batch)
		if err != nil {
			return appended, err
		}
		events := make([]*hoso.Event, len(cands))
		for i, c := range cands {
			events[i] = hoso.NewOverdueEvent(c.Code, c.Owner, c.Due)
		}
		for i, r := range w.Events.AppendBatch(ctx, events) {
			switch {
			case r.Err == nil && !r.Result.Duplicate:
				appended++
			case r.Err == nil:
			case hoso.ErrorCode(r.Err) == hoso.EINTERNAL:
				return appended, fmt.Errorf("overdue event of %q: %w", cands[i].Code, r.Err)
			default:
				w.logger().Info("deadline watcher: overdue event refused", "dossier", cands[i].Code,
					"due", cands[i].Due, "err", r.Err)
			}
		}
		if len(cands) < batch {
			return appended, nil
		}
		last := cands[len(cands)-1]
		after, afterCode = last.Due, last.Code
	}
}
