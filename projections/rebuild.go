package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
)

// RebuildSuffix names the file a rebuild writes next to the read model.
const RebuildSuffix = ".rebuild"

// Rebuild builds a new read model from the start of the stream into
// path+RebuildSuffix, in large batches, then renames it over path. Nothing
// may have path open meanwhile (hoso rebuild, or start-up when NeedsRebuild
// says so): a server rebuilding the file it serves calls DB.Rebuild.
//
// progress, when not nil, is called after each batch with the sequences
// done, the stream's last sequence and the rate in events per second.
func Rebuild(ctx context.Context, store hoso.Ledger, units *hoso.Units, path string, progress func(done, total uint64, rate float64)) error {
	tmp := path + RebuildSuffix
	defer releaseFreedCMemory()
	b, err := build(ctx, store, units, tmp, progress)
	if err != nil {
		return err
	}
	defer b.db.Close()
	if err := b.finish(); err != nil {
		return err
	}
	return replaceFile(tmp, path)
}

// Rebuild builds a new read model of db's file from the start of the stream
// into its path+RebuildSuffix while db keeps serving the old one, then swaps
// it in: db closes its connections, the file is renamed and db reopens on
// it. Queries wait for the moment of the swap only, and db's projector
// resumes from the new file's position (the events that arrived during the
// build are applied next). Another process must not have the file open.
// progress is as for the package's Rebuild.
func (db *DB) Rebuild(ctx context.Context, store hoso.Ledger, units *hoso.Units, progress func(done, total uint64, rate float64)) error {
	tmp := db.path + RebuildSuffix
	defer releaseFreedCMemory()
	b, err := build(ctx, store, units, tmp, progress)
	if err != nil {
		return err
	}
	defer b.db.Close()
	// Events kept arriving during the build and the live projection
	// applied them. Catch up now, without blocking anyone, and again under
	// the swap's lock to at least the live file's position, so the new file
	// is never behind the old one: the live projector then only skips.
	if err := b.catchUp(ctx, 0); err != nil {
		return err
	}
	return db.swap(tmp, func(liveSeq uint64) error {
		if err := b.catchUp(ctx, liveSeq); err != nil {
			return err
		}
		return b.finish()
	})
}

// builder is a read model being built: loaded in memory from the start of
// the stream (loader), then, once written, brought up to date by an
// ordinary projector.
type builder struct {
	db    *DB
	l     *loader
	p     *Projector // after the load
	units *hoso.Units
	store hoso.Ledger
	path  string
	// indexes are the CREATE INDEX statements of the indexes dropped for
	// the load, made again by endLoad.
	indexes []string
}

// build writes a read model of the stream's current content to a new file
// at path and leaves it open.
func build(ctx context.Context, store hoso.Ledger, units *hoso.Units, path string, progress func(done, total uint64, rate float64)) (*builder, error) {
	defer raiseGCPercent()()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("rebuild: %w", err)
		}
	}
	b, err := newBuilder(ctx, units, path)
	if err != nil {
		return nil, err
	}
	b.store = store
	db := b.db
	total, err := store.LastSeq(ctx)
	if err != nil {
		b.l.stop()
		db.Close()
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	start := time.Now()
	load := b.l
	report := func() {
		if progress != nil {
			done := load.applied
			progress(done, max(total, done), float64(done)/max(time.Since(start).Seconds(), 1e-9))
		}
	}
	if total > 0 {
		err = readAll(ctx, store, loadBatch, func(msgs []hoso.LedgerEntry, events []*hoso.Event) error {
			if err := b.l.apply(ctx, msgs, events); err != nil {
				return err
			}
			report()
			return nil
		})
		if err != nil {
			load.stop()
			db.Close()
			return nil, fmt.Errorf("rebuild: %w", err)
		}
	}
	if err := b.endLoad(ctx); err != nil {
		db.Close()
		return nil, err
	}
	report()
	return b, nil
}

// loadBatch is how many messages the load's reader hands over at a time.
const loadBatch = 4096

// readAll reads the whole stream as it is now and calls apply with batches
// of up to size messages and their events (an event that does not decode
// is nil: apply decodes it again and reports the error). A goroutine reads
// and decodes the next batches meanwhile; they go to apply whole, where a
// channel send per message costs more than the fold of some events.
func readAll(ctx context.Context, store hoso.Ledger, size int, apply func([]hoso.LedgerEntry, []*hoso.Event) error) error {
	type batch struct {
		msgs   []hoso.LedgerEntry
		events []*hoso.Event
	}
	const buffers = 4 // one being applied, the rest read ahead
	full, free := make(chan batch, buffers), make(chan batch, buffers)
	for range buffers {
		free <- batch{make([]hoso.LedgerEntry, 0, size), make([]*hoso.Event, 0, size)}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(full)
		b := <-free
		send := func() error {
			select {
			case full <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case b = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			b.msgs, b.events = b.msgs[:0], b.events[:0]
			return nil
		}
		readErr = store.Read(ctx, 1, false, func(m hoso.LedgerEntry) error {
			e, _ := m.Event()
			b.msgs, b.events = append(b.msgs, m), append(b.events, e)
			if len(b.msgs) < size {
				return nil
			}
			return send()
		})
		if readErr == nil && len(b.msgs) > 0 {
			readErr = send()
		}
	}()
	for b := range full {
		if err := apply(b.msgs, b.events); err != nil {
			return err
		}
		clear(b.msgs)
		clear(b.events)
		free <- b
	}
	return readErr
}

// A load allocates a few kilobytes per event that die at once (the NATS
// client's messages, the decoded events), while each collection marks the
// whole live heap: the process's, including the embedded server's index of
// message ids, and the load's open dossiers. At Go's default GOGC of 100
// the collector took about a fifth of a rebuild's CPU (more in a process
// that holds the ingest service's caches too). So the load runs
// the collector less often: at loadGCPercent when a memory limit bounds
// the heap (serve sets one by default), and without one as far as lets the
// heap grow by no more than loadGCHeadroom beyond what is live.
const (
	loadGCPercent  = 400
	loadGCHeadroom = 1 << 30
)

// raiseGCPercent sets the collector's GOGC for a load and returns what puts
// the previous value back. A value as high or higher, or none (off), is
// left alone: the user's, or another load's, which that load puts back. A
// memory limit still holds: near it, the collector runs as often as it
// needs to.
func raiseGCPercent() (restore func()) {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	want := loadGCPercent
	if debug.SetMemoryLimit(-1) == math.MaxInt64 && live[0].Value.Kind() == metrics.KindUint64 {
		if n := live[0].Value.Uint64(); n > 0 {
			want = int(min(loadGCPercent, max(100, loadGCHeadroom*100/n)))
		}
	}
	prev := debug.SetGCPercent(want)
	switch {
	case prev == want:
		return func() {}
	case prev < 0 || prev > want:
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() { debug.SetGCPercent(prev) }
}

// newBuilder opens a new read model at path, which must not exist, for a
// load.
func newBuilder(ctx context.Context, units *hoso.Units, path string) (*builder, error) {
	// A crash mid-build leaves a file nobody uses and the next rebuild
	// deletes, and any error discards the file, so the build needs no
	// syncs and no rollback journal at all (journal_mode=OFF): an
	// in-memory one held every page the last transaction changed, some
	// 600 MB at the end of a 10-million-dossier rebuild.
	db := &DB{path: path, bulk: true}
	if err := db.open(); err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	b := &builder{db: db, path: path, units: units}
	// Secondary indexes are made once at the end, from the finished
	// tables, instead of being updated row by row.
	for _, table := range []string{"dossiers", "transfer", "transfer_proc"} {
		stmts, err := dropIndexes(ctx, db.w, table)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("rebuild: %w", err)
		}
		b.indexes = append(b.indexes, stmts...)
	}
	b.l = newLoader(ctx, db, units, slog.New(slog.DiscardHandler))
	return b, nil
}

// endLoad writes what the load holds in memory and makes the indexes; the
// batches applied after it (catchUp) go through an ordinary projector.
func (b *builder) endLoad(ctx context.Context) error {
	if err := b.l.finish(ctx, b.indexes); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	b.l, b.indexes = nil, nil
	b.p = NewProjector(b.db, b.units)
	return nil
}

// catchUp applies what the stream holds beyond the build's position, if
// that is below target (always when target is 0).
func (b *builder) catchUp(ctx context.Context, target uint64) error {
	if target != 0 && b.p.AppliedSeq() >= target {
		return nil
	}
	last, err := b.store.LastSeq(ctx)
	if err != nil || last <= b.p.AppliedSeq() {
		return err
	}
	return pump(ctx, b.store, b.p.AppliedSeq()+1, false, RebuildBatch, func(msgs []hoso.LedgerEntry, events []*hoso.Event) error {
		return b.p.apply(ctx, msgs, events)
	})
}

// dropIndexes drops the indexes of table that were made by CREATE INDEX
// and returns their statements.
func dropIndexes(ctx context.Context, w *sql.DB, table string) ([]string, error) {
	rows, err := w.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema
		WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`, table)
	if err != nil {
		return nil, err
	}
	var names, stmts []string
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			rows.Close()
			return nil, err
		}
		names, stmts = append(names, name), append(stmts, stmt)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := w.ExecContext(ctx, `DROP INDEX "`+name+`"`); err != nil {
			return nil, err
		}
	}
	return stmts, nil
}

// finish makes the built file complete and durable on its own and closes
// it. It has no journal; the next Open puts it in WAL mode.
func (b *builder) finish() error {
	db := b.db
	if err := optimize(db.w); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	f, err := os.Open(b.path)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}
