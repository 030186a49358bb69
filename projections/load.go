package projections

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoso-ledger/hoso"
)

// loader folds a whole stream into a new read model file, for a rebuild.
// Nobody reads that file before it is complete and a failed rebuild throws
// it away, so the loader needs no per-batch transaction: it keeps the
// counts in memory and writes each row of the file once, sorted by the
// tables' keys — a dossier when it reaches a state no event leaves
// (returned, withdrawn), the day and month rows of a month once the stream
// is past it, and the rest at the end. The live projector (Projector.Apply)
// keeps its per-batch transaction instead.
//
// Memory holds the dossiers not yet returned or withdrawn, and one entry
// per (unit, procedure, day) with a count not yet written, whatever the
// number of events.
type loader struct {
	db    *DB
	units *hoso.Units
	log   *slog.Logger

	dossiers    map[string]*hoso.Dossier // not yet returned or withdrawn
	closed      []*hoso.Dossier          // returned or withdrawn, not yet written
	closedBatch int                      // how many closed wait before they are written

	// Unit and procedure codes are interned: the aggregates are keyed by
	// small numbers. Code 0 is "".
	codes []string
	ids   map[string]uint32
	seen  map[uint32]bool // unit codes that have a count

	flows, stocks, transfers *aggSet
	// written is the first day not yet written at the day and month
	// grains (the first of a month); lastDay is the latest event day seen.
	written, lastDay int32
	years            map[int32]int32 // day -> its year

	applied uint64
	last    hoso.LedgerEntry

	// A goroutine writes what the load hands it (closed dossiers, months
	// past), so that SQLite works while the stream is read and folded.
	jobs   chan loadJob
	wg     sync.WaitGroup
	failed atomic.Bool
	err    error // the writer's first error; read after wg.Wait
}

// loadJob is rows to write in one transaction. codes and rank are the
// interned codes as they stood when the job was made.
type loadJob struct {
	closed []*hoso.Dossier
	aggs   []*aggSet // cur holds the days to write
	codes  []string
	rank   []uint32
}

// closedBatch is how many returned or withdrawn dossiers wait in memory
// before they are written.
const closedBatch = 20_000

// newLoader returns a loader into db, with its writer running until
// finish or stop.
func newLoader(ctx context.Context, db *DB, units *hoso.Units, log *slog.Logger) *loader {
	l := &loader{
		db: db, units: units, log: log,
		dossiers:    map[string]*hoso.Dossier{},
		closedBatch: closedBatch,
		codes:       []string{""},
		ids:         map[string]uint32{"": 0},
		seen:        map[uint32]bool{},
		flows:       newAggSet(flowTable, nFlow),
		stocks:      newAggSet(stockTable, nStock),
		transfers:   newAggSet(transferTable, 1),
		written:     math.MinInt32,
		lastDay:     math.MinInt32,
		years:       map[int32]int32{},
		jobs:        make(chan loadJob, 2),
	}
	jobs := l.jobs
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for j := range jobs {
			if l.err != nil {
				continue // drain: the load has failed
			}
			if l.err = l.write(ctx, j); l.err != nil {
				l.failed.Store(true)
			}
		}
	}()
	return l
}

// stop waits for the writer to write what it was given and returns its
// error. The loader accepts nothing after it.
func (l *loader) stop() error {
	if l.jobs != nil {
		close(l.jobs)
		l.jobs = nil
		l.wg.Wait()
	}
	return l.err
}

// write writes one job in one transaction.
func (l *loader) write(ctx context.Context, j loadJob) error {
	tx, err := l.db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if err := textDossiers(ctx, tx, j.closed); err != nil {
		return err
	}
	for _, a := range j.aggs {
		if err := writeRows(ctx, tx, j.codes, j.rank, a.table, a.cur, []int{grainDay, grainMonth}, false); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (l *loader) id(code string) uint32 {
	if id, ok := l.ids[code]; ok {
		return id
	}
	id := uint32(len(l.codes))
	l.codes = append(l.codes, code)
	l.ids[code] = id
	return id
}

// apply folds msgs, which must continue the stream where the load stands;
// events, when not nil, holds them decoded (a nil element is decoded here).
func (l *loader) apply(ctx context.Context, msgs []hoso.LedgerEntry, events []*hoso.Event) error {
	for i, m := range msgs {
		if want := l.applied + 1; m.Seq != want {
			return &GapError{Want: want, Got: m.Seq}
		}
		var e *hoso.Event
		if events != nil {
			e = events[i]
		}
		if e == nil {
			var err error
			if e, err = m.Event(); err != nil {
				return err
			}
		}
		d := l.dossiers[e.Dossier]
		fresh := d == nil
		if fresh {
			d = &hoso.Dossier{}
		}
		if e.Version != d.Version+1 {
			return fmt.Errorf("seq %d: dossier %q: event version %d does not follow version %d",
				e.Seq, e.Dossier, e.Version, d.Version)
		}
		prev := *d
		if err := d.Apply(e); err != nil {
			return fmt.Errorf("seq %d: dossier %q does not fold: %w", e.Seq, e.Dossier, err)
		}
		l.lastDay = max(l.lastDay, int32(hoso.LocalDate(e.At)))
		account(l, &prev, d, e)
		switch {
		case d.State == hoso.StateReturned || d.State == hoso.StateWithdrawn:
			// No event leaves these states: the row is final.
			delete(l.dossiers, d.Code)
			l.closed = append(l.closed, d)
		case fresh:
			l.dossiers[d.Code] = d
		}
		l.applied, l.last = m.Seq, m
	}
	var job loadJob
	if len(l.closed) >= l.closedBatch {
		job.closed, l.closed = l.closed, nil
	}
	// The counts of the months that ended writeLag days before the latest
	// event are written at the day and month grains: the stream is in the
	// order the events were recorded, and their business days follow it
	// closely. Counts that still arrive for a written day are kept apart
	// and added to their rows at the end; so any order is right, and the
	// usual order writes each row once, while the stream is still read.
	if l.lastDay != math.MinInt32 {
		y, mo, _ := civil(int64(l.lastDay) - writeLag)
		if until := int32(dayOf(y, mo, 1)); until > l.written {
			for _, a := range []*aggSet{l.flows, l.stocks, l.transfers} {
				job.aggs = append(job.aggs, &aggSet{table: a.table, cur: a.cur.split(until)})
			}
			l.written = until
		}
	}
	if job.closed == nil && job.aggs == nil {
		return nil
	}
	if l.failed.Load() {
		return l.stop()
	}
	job.codes, job.rank = l.codes, l.ranks()
	select {
	case l.jobs <- job:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLag is how far behind the latest event day the load keeps its day
// counts in memory before it writes them.
const writeLag = 7

// finish writes what the load holds in memory — the dossiers, the units
// seen, every aggregate row at the three grains and the position reached —
// and makes the indexes, in one transaction.
func (l *loader) finish(ctx context.Context, indexes []string) error {
	if err := l.stop(); err != nil {
		return err
	}
	tx, err := l.db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	for _, d := range l.dossiers {
		l.closed = append(l.closed, d)
	}
	l.dossiers = nil
	if err := textDossiers(ctx, tx, l.closed); err != nil {
		return err
	}
	l.closed = nil
	seen := make([]string, 0, len(l.seen))
	for id := range l.seen {
		seen = append(seen, l.codes[id])
	}
	slices.Sort(seen)
	ins := newMultiInsert(ctx, tx, `INSERT INTO units_seen (code)`, 1, "")
	for _, code := range seen {
		if err := ins.add(code); err != nil {
			ins.flush()
			return fmt.Errorf("write units_seen: %w", err)
		}
	}
	if err := ins.flush(); err != nil {
		return fmt.Errorf("write units_seen: %w", err)
	}
	rank := l.ranks()
	for _, a := range []*aggSet{l.flows, l.stocks, l.transfers} {
		for _, w := range []struct {
			agg    *dayAgg
			grains []int
			upsert bool
		}{
			{a.cur, []int{grainDay, grainMonth}, false},
			{a.year, []int{grainYear}, false},
			{a.late, []int{grainDay, grainMonth}, true},
		} {
			if err := writeRows(ctx, tx, l.codes, rank, a.table, w.agg, w.grains, w.upsert); err != nil {
				return err
			}
		}
	}
	if l.applied > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			metaAppliedSeq, strconv.FormatUint(l.applied, 10),
			metaAppliedTime, l.last.Time.UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("write applied_seq: %w", err)
		}
	}
	for _, stmt := range indexes {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// The loader is a tally that counts per procedure only: a unit's total is
// the sum of its procedures, derived when the rows are written.
var _ tally = (*loader)(nil)

func (l *loader) unit(code string, at time.Time) {
	id := l.id(code)
	if l.seen[id] {
		return
	}
	l.seen[id] = true
	if l.units != nil {
		if _, known := l.units.At(code, at); !known {
			l.log.Warn("projection: unit code unknown to the registry; its dossiers appear in no report row", "unit", code)
		}
	}
}

func (l *loader) flow(unit, proc string, day int64, i int) {
	l.add(l.flows, dayKey{l.id(unit), 0, l.id(proc), int32(day)}, i, 1)
}

func (l *loader) transfer(from, to, proc string, day int64) {
	l.add(l.transfers, dayKey{l.id(from), l.id(to), l.id(proc), int32(day)}, 0, 1)
}

func (l *loader) stock(unit, proc string, day int64, i int, delta int64) {
	l.add(l.stocks, dayKey{l.id(unit), 0, l.id(proc), int32(day)}, i, delta)
}

func (l *loader) add(a *aggSet, k dayKey, i int, delta int64) {
	if k.day < l.written {
		a.late.add(k, i, delta)
	} else {
		a.cur.add(k, i, delta)
	}
	y, ok := l.years[k.day]
	if !ok {
		y = int32(monthOf(int64(k.day)) / 12)
		l.years[k.day] = y
	}
	k.day = y
	a.year.add(k, i, delta)
}

// dayKey is a count's unit (the unit left, for a transfer), the unit
// reached (transfers only), procedure and local day, as interned codes.
type dayKey struct {
	unit, to, proc uint32
	day            int32
}

// dayAgg holds width counters per dayKey, in one flat slice.
type dayAgg struct {
	width int
	index map[dayKey]int32
	keys  []dayKey
	vals  []int64
}

func newDayAgg(width int) *dayAgg {
	return &dayAgg{width: width, index: map[dayKey]int32{}}
}

func (a *dayAgg) add(k dayKey, i int, delta int64) {
	j, ok := a.index[k]
	if !ok {
		j = int32(len(a.keys))
		a.index[k] = j
		a.keys = append(a.keys, k)
		a.vals = append(a.vals, make([]int64, a.width)...)
	}
	a.vals[int(j)*a.width+i] += delta
}

// aggTable is one family of aggregate tables: with and without the
// procedure.
type aggTable struct {
	plain, proc                 string // INSERT … (columns)
	plainConflict, procConflict string // ON CONFLICT … DO UPDATE, adding
	transfer                    bool   // keyed by the unit reached too
}

const flowColumns = `received_online, received_direct, received_postal, resolved_early, resolved_on_time, resolved_late, withdrawn`

var (
	flowTable = aggTable{
		plain:         `INSERT INTO flow (grain, period, unit, ` + flowColumns + `)`,
		proc:          `INSERT INTO flow_proc (grain, period, procedure, unit, ` + flowColumns + `)`,
		plainConflict: `ON CONFLICT (grain, unit, period) DO UPDATE SET ` + flowSet,
		procConflict:  `ON CONFLICT (grain, unit, period, procedure) DO UPDATE SET ` + flowSet,
	}
	stockTable = aggTable{
		plain:         `INSERT INTO stock (grain, period, unit, open, paused, overdue)`,
		proc:          `INSERT INTO stock_proc (grain, period, procedure, unit, open, paused, overdue)`,
		plainConflict: `ON CONFLICT (grain, unit, period) DO UPDATE SET ` + stockSet,
		procConflict:  `ON CONFLICT (grain, unit, period, procedure) DO UPDATE SET ` + stockSet,
	}
	transferTable = aggTable{
		plain:         `INSERT INTO transfer (grain, period, from_unit, to_unit, n)`,
		proc:          `INSERT INTO transfer_proc (grain, period, procedure, from_unit, to_unit, n)`,
		plainConflict: `ON CONFLICT (grain, from_unit, period, to_unit) DO UPDATE SET n = n + excluded.n`,
		procConflict:  `ON CONFLICT (grain, from_unit, period, procedure, to_unit) DO UPDATE SET n = n + excluded.n`,
		transfer:      true,
	}
)

// aggSet is what the load holds of one family of tables: the day counts
// not written yet (cur), those that arrived for days already written
// (late), and the year counts (years, keyed by year in place of the day),
// written at the end.
type aggSet struct {
	table           aggTable
	cur, late, year *dayAgg
}

func newAggSet(t aggTable, width int) *aggSet {
	return &aggSet{table: t, cur: newDayAgg(width), late: newDayAgg(width), year: newDayAgg(width)}
}

// ranks orders interned codes as their strings sort: rank[id].
func (l *loader) ranks() []uint32 {
	order := make([]uint32, len(l.codes))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(l.codes[a], l.codes[b]) })
	rank := make([]uint32, len(l.codes))
	for r, id := range order {
		rank[id] = uint32(r)
	}
	return rank
}

// writeRows writes the rows of agg at grains; upsert adds them to rows
// that may exist.
func writeRows(ctx context.Context, tx *sql.Tx, codes []string, rank []uint32, t aggTable, agg *dayAgg, grains []int, upsert bool) error {
	var plainTail, procTail string
	if upsert {
		plainTail, procTail = t.plainConflict, t.procConflict
	}
	plain := newSQLText(ctx, tx, t.plain, plainTail)
	proc := newSQLText(ctx, tx, t.proc, procTail)
	err := agg.rows(rank, grains, func(grain int, period int64, unit, to, pr uint32, v []int64) error {
		w := plain
		if pr != 0 {
			w = proc
		}
		w.row().int(int64(grain)).int(period)
		if pr != 0 {
			w.str(codes[pr])
		}
		w.str(codes[unit])
		if t.transfer {
			w.str(codes[to])
		}
		for _, n := range v {
			w.int(n)
		}
		return w.end()
	})
	if err := cmp.Or(err, plain.flush(), proc.flush()); err != nil {
		return fmt.Errorf("write aggregates: %w", err)
	}
	return nil
}

// rows calls fn with every row of agg at each of grains (a year agg, keyed
// by year, at grainYear only), in the order of the tables' keys: grain,
// unit, period, then procedure and the unit reached. A row without
// procedure (proc 0) sums the procedures. Rows whose counters are all zero
// are left out: they add nothing to a sum.
func (a *dayAgg) rows(rank []uint32, grains []int, fn func(grain int, period int64, unit, to, proc uint32, v []int64) error) error {
	perm := make([]int32, len(a.keys))
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(x, y int32) int {
		kx, ky := &a.keys[x], &a.keys[y]
		return cmp.Or(cmp.Compare(rank[kx.unit], rank[ky.unit]), cmp.Compare(kx.day, ky.day))
	})
	// A group is the keys of one unit in one period; its rows are summed
	// in a small map and written sorted.
	type rowKey struct{ proc, to uint32 }
	w := a.width
	sums := map[rowKey][]int64{}
	var keys []rowKey
	emit := func(grain int, period int64, unit uint32) error {
		keys = keys[:0]
		for k := range sums {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y rowKey) int {
			return cmp.Or(cmp.Compare(rank[x.proc], rank[y.proc]), cmp.Compare(rank[x.to], rank[y.to]))
		})
		for _, k := range keys {
			if v := sums[k]; slices.ContainsFunc(v, func(n int64) bool { return n != 0 }) {
				if err := fn(grain, period, unit, k.to, k.proc, v); err != nil {
					return err
				}
			}
		}
		clear(sums)
		return nil
	}
	for _, grain := range grains {
		periodOf := func(day int32) int64 {
			if grain == grainMonth {
				return monthOf(int64(day))
			}
			return int64(day)
		}
		var unit uint32
		var period int64
		started := false
		for _, j := range perm {
			k := &a.keys[j]
			p := periodOf(k.day)
			if started && (k.unit != unit || p != period) {
				if err := emit(grain, period, unit); err != nil {
					return err
				}
			}
			unit, period, started = k.unit, p, true
			v := a.vals[int(j)*w : int(j+1)*w]
			for _, rk := range [2]rowKey{{0, k.to}, {k.proc, k.to}} {
				s := sums[rk]
				if s == nil {
					s = make([]int64, w)
					sums[rk] = s
				}
				for i, n := range v {
					s[i] += n
				}
			}
		}
		if started {
			if err := emit(grain, period, unit); err != nil {
				return err
			}
		}
	}
	return nil
}

// split moves the counts of the days before day to a new dayAgg.
func (a *dayAgg) split(day int32) *dayAgg {
	old, keep := newDayAgg(a.width), newDayAgg(a.width)
	for j, k := range a.keys {
		dst := keep
		if k.day < day {
			dst = old
		}
		dst.index[k] = int32(len(dst.keys))
		dst.keys = append(dst.keys, k)
		dst.vals = append(dst.vals, a.vals[j*a.width:(j+1)*a.width]...)
	}
	*a = *keep
	return old
}
