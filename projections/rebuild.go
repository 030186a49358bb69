package projections

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// builder is a read model being built.
type builder struct {
	db    *DB
	p     *Projector
	store hoso.Ledger
	path  string
}

// build writes a read model of the stream's current content to a new file
// at path and leaves it open.
func build(ctx context.Context, store hoso.Ledger, units *hoso.Units, path string, progress func(done, total uint64, rate float64)) (*builder, error) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("rebuild: %w", err)
		}
	}
	db, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	b := &builder{db: db, store: store, path: path,
		p: NewProjector(db, units, WithCacheSize(4*RebuildBatch+DefaultCacheSize))}
	// A crash mid-build leaves a file nobody uses and the next rebuild
	// deletes, so the build need not survive power loss.
	if _, err := db.w.ExecContext(ctx, `PRAGMA synchronous = OFF`); err != nil {
		db.Close()
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	total, err := store.LastSeq(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	start := time.Now()
	report := func() {
		if progress != nil {
			done := b.p.AppliedSeq()
			progress(done, max(total, done), float64(done)/max(time.Since(start).Seconds(), 1e-9))
		}
	}
	if total > 0 {
		err = pump(ctx, store, 1, false, RebuildBatch, func(msgs []hoso.LedgerEntry) error {
			if err := b.p.Apply(ctx, msgs); err != nil {
				return err
			}
			report()
			return nil
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("rebuild: %w", err)
		}
	}
	report()
	return b, nil
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
	return pump(ctx, b.store, b.p.AppliedSeq()+1, false, RebuildBatch, func(msgs []hoso.LedgerEntry) error {
		return b.p.Apply(ctx, msgs)
	})
}

// finish makes the built file complete and durable on its own, without a
// WAL, and closes it.
func (b *builder) finish() error {
	db := b.db
	if _, err := db.w.Exec(`PRAGMA synchronous = NORMAL`); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := optimize(db.w); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if _, err := db.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
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
