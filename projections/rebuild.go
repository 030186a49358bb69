package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
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
	if err := b.endBulk(ctx); err != nil {
		return err
	}
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
	if err := b.endBulk(ctx); err != nil {
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
	// indexes are the CREATE INDEX statements of the indexes dropped for
	// the bulk load, made again by endBulk.
	indexes []string
}

// build writes a read model of the stream's current content to a new file
// at path and leaves it open.
func build(ctx context.Context, store hoso.Ledger, units *hoso.Units, path string, progress func(done, total uint64, rate float64)) (*builder, error) {
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
		err = pump(ctx, store, 1, false, RebuildBatch, func(msgs []hoso.LedgerEntry, events []*hoso.Event) error {
			if err := b.p.apply(ctx, msgs, events); err != nil {
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

// newBuilder opens a new read model at path, which must not exist, for a
// bulk load.
func newBuilder(ctx context.Context, units *hoso.Units, path string) (*builder, error) {
	// A crash mid-build leaves a file nobody uses and the next rebuild
	// deletes, so the build needs neither a journal on disk nor syncs; each
	// batch still commits with the sequence it reached, and a failed batch
	// still rolls back (the journal is in memory).
	db := &DB{path: path, bulk: true}
	if err := db.open(); err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	b := &builder{db: db, path: path,
		p: NewProjector(db, units, WithCacheSize(4*RebuildBatch+DefaultCacheSize))}
	// The dossiers' secondary indexes are made once at the end, from the
	// sorted table, instead of being updated by every batch; so are the
	// aggregates' month and year rows, from the day rows.
	b.p.daysOnly = true
	var err error
	if b.indexes, err = dropIndexes(ctx, db.w, "dossiers"); err != nil {
		db.Close()
		return nil, fmt.Errorf("rebuild: %w", err)
	}
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

// endBulk derives the aggregates' month and year rows from the day rows
// and makes the indexes dropped for the bulk load, in one transaction; the
// batches applied after it write every grain and update the indexes as
// usual.
func (b *builder) endBulk(ctx context.Context) error {
	if !b.p.daysOnly {
		return nil
	}
	err := func() error {
		tx, err := b.db.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() // a no-op after Commit
		if err := deriveGrains(ctx, tx); err != nil {
			return err
		}
		for _, stmt := range b.indexes {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	b.indexes, b.p.daysOnly = nil, false
	return nil
}

// aggregateTables are the aggregate tables with, after grain and period,
// their key columns and their counters.
var aggregateTables = []struct{ name, keys, counts string }{
	{"flow", "unit", flowCounters},
	{"flow_proc", "procedure, unit", flowCounters},
	{"stock", "unit", "open, paused, overdue"},
	{"stock_proc", "procedure, unit", "open, paused, overdue"},
	{"transfer", "from_unit, to_unit", "n"},
	{"transfer_proc", "procedure, from_unit, to_unit", "n"},
}

const flowCounters = "received_online, received_direct, received_postal, resolved_early, resolved_on_time, resolved_late, withdrawn"

// deriveGrains writes the month and year rows of every aggregate table as
// the sums of its day rows, into tables that hold day rows only. A month
// is year*12 + month-1 (monthOf), a year is month/12.
func deriveGrains(ctx context.Context, tx *sql.Tx) error {
	const monthOfDay = `CAST(strftime('%Y', period * 86400, 'unixepoch') AS INTEGER) * 12 +
		CAST(strftime('%m', period * 86400, 'unixepoch') AS INTEGER) - 1`
	for _, t := range aggregateTables {
		var sums []string
		for c := range strings.SplitSeq(t.counts, ", ") {
			sums = append(sums, "sum("+c+")")
		}
		for _, up := range []struct {
			grain, from int
			period      string
		}{{grainMonth, grainDay, monthOfDay}, {grainYear, grainMonth, "period / 12"}} {
			q := fmt.Sprintf(`INSERT INTO %[1]s (grain, period, %[2]s, %[3]s)
				SELECT %[4]d, p, %[2]s, %[5]s FROM (SELECT %[6]s AS p, * FROM %[1]s WHERE grain = %[7]d)
				GROUP BY p, %[2]s`, t.name, t.keys, t.counts, up.grain, strings.Join(sums, ", "), up.period, up.from)
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("derive %s: %w", t.name, err)
			}
		}
	}
	return nil
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
