package projections

import (
	"cmp"
	"context"
	"database/sql/driver"
	"fmt"
	"hash/maphash"
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
// number of events. A resolved dossier is kept for its return, the only
// event left to it, for spillAfterDays; one still not returned by then (in
// practice, many are never marked returned) is written as it stands and
// leaves a 16-byte mark instead, against which a late return is checked
// and written as an update at the end.
type loader struct {
	db    *DB
	units *hoso.Units
	log   *slog.Logger

	dossiers    map[string]*hoso.Dossier // not yet returned or withdrawn
	closed      []*hoso.Dossier          // returned or withdrawn, not yet written
	closedBatch int                      // how many closed wait before they are written
	spillAfter  int32                    // spillAfterDays, but for tests

	// resolvedQueue holds the codes of the dossiers resolved, in the
	// order of the stream, with their local day; spilled marks those
	// written while resolved, by the hash of their code; returns are the
	// late returns of spilled dossiers, written by finish.
	resolvedQueue []resolvedCode
	spilled       map[uint64]spilledDossier
	hashSeed      maphash.Seed
	returns       []*hoso.Dossier
	// spilledCount and lateReturns count the dossiers spilled and the
	// returns written as updates.
	spilledCount, lateReturns int

	// Unit and procedure codes are interned: the aggregates are keyed by
	// small numbers. Code 0 is "". recent holds the last codes looked up:
	// an event's counts name the same unit and procedure again and again.
	codes  []string
	ids    map[string]uint32
	recent [2]internedCode
	seen   []bool // by id: unit codes that have a count

	flows, stocks, transfers *aggSet
	// written is the first day not yet written at the day and month
	// grains (the first of a month); lastDay is the latest event day seen.
	written, lastDay int32

	applied uint64
	last    hoso.LedgerEntry

	// A goroutine writes what the load hands it (closed dossiers, months
	// past), so that SQLite works while the stream is read and folded.
	jobs   chan loadJob
	wg     sync.WaitGroup
	failed atomic.Bool
	err    error // the writer's first error; read after wg.Wait
}

// internedCode is a code and its id.
type internedCode struct {
	code string
	id   uint32
}

// loadJob is rows to write in one transaction. codes and rank are the
// interned codes as they stood when the job was made.
type loadJob struct {
	closed []*hoso.Dossier
	months []monthAgg // written at the day and month grains
	codes  []string
	rank   []uint32
}

// monthAgg is the day counts of one month of one family of tables, and
// the family, whose year counts they are added to once written.
type monthAgg struct {
	set *aggSet
	agg *dayAgg
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
		spilled:     map[uint64]spilledDossier{},
		hashSeed:    maphash.MakeSeed(),
		closedBatch: closedBatch,
		spillAfter:  spillAfterDays,
		codes:       []string{""},
		ids:         map[string]uint32{"": 0},
		seen:        []bool{false},
		flows:       newAggSet(flowTable, nFlow),
		stocks:      newAggSet(stockTable, nStock),
		transfers:   newAggSet(transferTable, 1),
		written:     math.MinInt32,
		lastDay:     math.MinInt32,
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

// write writes one job in one transaction, and adds its months to the
// year counts (which the writer alone touches until finish).
func (l *loader) write(ctx context.Context, j loadJob) error {
	return rawTx(ctx, l.db.w, func(conn driver.Conn) error {
		if err := bulkDossiers(ctx, conn, j.closed); err != nil {
			return err
		}
		for _, m := range j.months {
			if err := writeRows(ctx, conn, j.codes, j.rank, m.set.table, m.agg, []int{grainDay, grainMonth}, false); err != nil {
				return err
			}
			m.set.year.addYears(m.agg)
		}
		return nil
	})
}

func (l *loader) id(code string) uint32 {
	for _, r := range l.recent {
		if r.code == code {
			return r.id
		}
	}
	id, ok := l.ids[code]
	if !ok {
		id = uint32(len(l.codes))
		l.codes = append(l.codes, code)
		l.seen = append(l.seen, false)
		l.ids[code] = id
	}
	l.recent[1], l.recent[0] = l.recent[0], internedCode{code, id}
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
		var spill spilledDossier
		if fresh {
			d = &hoso.Dossier{}
			if e.Type != hoso.EventReceived {
				// Written while resolved: fold on from its mark.
				var ok bool
				if spill, ok = l.spilled[l.hash(e.Dossier)]; ok {
					d = &hoso.Dossier{Code: e.Dossier, State: hoso.StateResolved, Version: int(spill.version), LastAt: time.Unix(0, spill.lastAt)}
				}
			}
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
		case spill.version != 0:
			// Its row is written (or about to be, in order): update it.
			delete(l.spilled, l.hash(d.Code))
			l.returns = append(l.returns, d)
			l.lateReturns++
		case e.Type == hoso.EventResolved:
			l.resolvedQueue = append(l.resolvedQueue, resolvedCode{d.Code, int32(hoso.LocalDate(e.At))})
		case d.State == hoso.StateReturned || d.State == hoso.StateWithdrawn:
			// No event leaves these states: the row is final.
			delete(l.dossiers, d.Code)
			l.closed = append(l.closed, d)
		case fresh:
			l.dossiers[d.Code] = d
		}
		l.applied, l.last = m.Seq, m
	}
	l.spill()
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
				job.months = append(job.months, a.takeBefore(until)...)
			}
			l.written = until
		}
	}
	if job.closed == nil && job.months == nil {
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

// spillAfterDays is how many local days after its resolution the load
// keeps a dossier not yet returned in memory.
const spillAfterDays = 30

// resolvedCode is a resolved dossier's code and the local day it was
// resolved.
type resolvedCode struct {
	code string
	day  int32
}

// spilledDossier is what a return is checked against: the version and last
// event time of a dossier written while resolved.
type spilledDossier struct {
	version uint32
	lastAt  int64 // Unix nanoseconds
}

func (l *loader) hash(code string) uint64 { return maphash.String(l.hashSeed, code) }

// spill hands the dossiers resolved spillAfterDays before the latest event
// day and still not returned to the writer, leaving a mark of each. A
// dossier whose code's hash is already marked stays in memory, so a mark
// always belongs to one dossier.
func (l *loader) spill() {
	limit := l.lastDay - l.spillAfter
	i := 0
	for ; i < len(l.resolvedQueue) && l.resolvedQueue[i].day < limit; i++ {
		r := l.resolvedQueue[i]
		d := l.dossiers[r.code]
		if d == nil || d.State != hoso.StateResolved || d.Version > math.MaxUint32 {
			continue
		}
		h := l.hash(r.code)
		if _, taken := l.spilled[h]; taken {
			continue
		}
		l.spilled[h] = spilledDossier{version: uint32(d.Version), lastAt: d.LastAt.UnixNano()}
		delete(l.dossiers, r.code)
		l.closed = append(l.closed, d)
		l.spilledCount++
	}
	if i > 0 {
		// Let the consumed front go once it is most of the slice.
		if i > len(l.resolvedQueue)/2 {
			l.resolvedQueue = append([]resolvedCode(nil), l.resolvedQueue[i:]...)
		} else {
			l.resolvedQueue = l.resolvedQueue[i:]
		}
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
	for _, d := range l.dossiers {
		l.closed = append(l.closed, d)
	}
	l.dossiers = nil
	return rawTx(ctx, l.db.w, func(conn driver.Conn) error {
		if err := bulkDossiers(ctx, conn, l.closed); err != nil {
			return err
		}
		l.closed = nil
		if err := updateReturned(ctx, conn, l.returns); err != nil {
			return err
		}
		l.returns = nil
		var seen []string
		for id, ok := range l.seen {
			if ok {
				seen = append(seen, l.codes[id])
			}
		}
		slices.Sort(seen)
		ins := newBulkRows(ctx, conn, `INSERT INTO units_seen (code)`, 1, "")
		for _, code := range seen {
			if err := ins.row().str(code).end(); err != nil {
				ins.flush()
				return fmt.Errorf("write units_seen: %w", err)
			}
		}
		if err := ins.flush(); err != nil {
			return fmt.Errorf("write units_seen: %w", err)
		}
		rank := l.ranks()
		for _, a := range []*aggSet{l.flows, l.stocks, l.transfers} {
			for _, m := range a.takeBefore(math.MaxInt32) {
				if err := writeRows(ctx, conn, l.codes, rank, a.table, m.agg, []int{grainDay, grainMonth}, false); err != nil {
					return err
				}
				a.year.addYears(m.agg)
			}
			if err := writeRows(ctx, conn, l.codes, rank, a.table, a.late, []int{grainDay, grainMonth}, true); err != nil {
				return err
			}
			a.year.addYears(a.late)
			if err := writeRows(ctx, conn, l.codes, rank, a.table, a.year, []int{grainYear}, false); err != nil {
				return err
			}
		}
		if l.applied > 0 {
			meta := newBulkRows(ctx, conn, `INSERT INTO meta (key, value)`, 2, `ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
			meta.row().str(metaAppliedSeq).str(strconv.FormatUint(l.applied, 10))
			meta.row().str(metaAppliedTime).str(l.last.Time.UTC().Format(time.RFC3339Nano))
			if err := meta.flush(); err != nil {
				return fmt.Errorf("write applied_seq: %w", err)
			}
		}
		for _, stmt := range indexes {
			if err := rawExec(ctx, conn, stmt); err != nil {
				return err
			}
		}
		return nil
	})
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
		return
	}
	if a.lastAgg == nil || k.day != a.lastDay {
		m := int32(monthOf(int64(k.day)))
		agg := a.months[m]
		if agg == nil {
			agg = newDayAgg(a.width)
			a.months[m] = agg
		}
		a.lastDay, a.lastAgg = k.day, agg
	}
	a.lastAgg.add(k, i, delta)
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
	a.at(k)[i] += delta
}

// at returns the counters of k, adding them if new.
func (a *dayAgg) at(k dayKey) []int64 {
	j, ok := a.index[k]
	if !ok {
		j = int32(len(a.keys))
		a.index[k] = j
		a.keys = append(a.keys, k)
		a.vals = append(a.vals, make([]int64, a.width)...)
	}
	return a.vals[int(j)*a.width : int(j+1)*a.width]
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
// not written yet, by month (months, keyed by monthOf), those that arrived
// for days already written (late), and the year counts (year, keyed by
// year in place of the day), added from the day counts as they are
// written and written at the end.
type aggSet struct {
	table      aggTable
	width      int
	months     map[int32]*dayAgg
	late, year *dayAgg
	// lastAgg is the month of lastDay, the day of the last count: most
	// counts of a batch fall on a few days.
	lastDay int32
	lastAgg *dayAgg
}

func newAggSet(t aggTable, width int) *aggSet {
	return &aggSet{table: t, width: width, months: map[int32]*dayAgg{},
		late: newDayAgg(width), year: newDayAgg(width)}
}

// takeBefore removes the months that start before day and returns them in
// order.
func (a *aggSet) takeBefore(day int32) []monthAgg {
	var months []int32
	for m := range a.months {
		y, mo := int(m/12), time.Month(m%12+1)
		if dayOf(y, mo, 1) < int64(day) {
			months = append(months, m)
		}
	}
	slices.Sort(months)
	taken := make([]monthAgg, len(months))
	for i, m := range months {
		taken[i] = monthAgg{a, a.months[m]}
		if a.lastAgg == a.months[m] {
			a.lastAgg = nil
		}
		delete(a.months, m)
	}
	return taken
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
func writeRows(ctx context.Context, conn driver.Conn, codes []string, rank []uint32, t aggTable, agg *dayAgg, grains []int, upsert bool) error {
	var plainTail, procTail string
	if upsert {
		plainTail, procTail = t.plainConflict, t.procConflict
	}
	// grain, period, unit, the unit reached, the counters; and procedure.
	cols := 3 + agg.width
	if t.transfer {
		cols++
	}
	plain := newBulkRows(ctx, conn, t.plain, cols, plainTail)
	proc := newBulkRows(ctx, conn, t.proc, cols+1, procTail)
	// Codes and periods repeat from row to row: each is made a
	// driver.Value once, not once per row.
	boxed := make([]driver.Value, len(codes))
	code := func(id uint32) driver.Value {
		if boxed[id] == nil {
			boxed[id] = codes[id]
		}
		return boxed[id]
	}
	lastPeriod, period := int64(math.MinInt64), driver.Value(nil)
	err := agg.rows(rank, grains, func(grain int, p int64, unit, to, pr uint32, v []int64) error {
		w := plain
		if pr != 0 {
			w = proc
		}
		if p != lastPeriod {
			lastPeriod, period = p, p
		}
		w.row().int(int64(grain)).add(period)
		if pr != 0 {
			w.add(code(pr))
		}
		w.add(code(unit))
		if t.transfer {
			w.add(code(to))
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
// are left out: they add nothing to a sum. fn must not keep v.
func (a *dayAgg) rows(rank []uint32, grains []int, fn func(grain int, period int64, unit, to, proc uint32, v []int64) error) error {
	// Sorted by the tables' order, the keys of one row are adjacent: a
	// row with procedure sums a run of them, and the rows without sum
	// those of a group (one unit in one period) by unit reached.
	type sortKey struct {
		group, row uint64 // the ranks of unit and period; of procedure and unit reached
		j          int32
	}
	type plainRow struct {
		to   uint32 // id
		sums []int64
	}
	w := a.width
	order := make([]sortKey, len(a.keys))
	sum := make([]int64, w)
	var plain []plainRow
	var plainSums []int64
	addPlain := func(to uint32, v []int64) {
		i := slices.IndexFunc(plain, func(r plainRow) bool { return r.to == to })
		if i < 0 {
			i = len(plain)
			n := len(plainSums)
			plainSums = slices.Grow(plainSums, w)[:n+w]
			clear(plainSums[n:])
			plain = append(plain, plainRow{to: to, sums: plainSums[n:]})
		}
		for j, n := range v {
			plain[i].sums[j] += n
		}
	}
	nonZero := func(v []int64) bool { return slices.ContainsFunc(v, func(n int64) bool { return n != 0 }) }
	for _, grain := range grains {
		lastDay, lastPeriod := int32(math.MinInt32), int64(0)
		for j, k := range a.keys {
			if k.day != lastDay {
				lastDay, lastPeriod = k.day, int64(k.day)
				if grain == grainMonth {
					lastPeriod = monthOf(int64(k.day))
				}
			}
			// A period (a day, month or year) fits in 32 bits; the offset
			// keeps the order of negative ones.
			order[j] = sortKey{uint64(rank[k.unit])<<32 | uint64(uint32(lastPeriod+math.MaxInt32+1)),
				uint64(rank[k.proc])<<32 | uint64(rank[k.to]), int32(j)}
		}
		slices.SortFunc(order, func(x, y sortKey) int {
			if x.group != y.group {
				return cmp.Compare(x.group, y.group)
			}
			return cmp.Compare(x.row, y.row)
		})
		for g := 0; g < len(order); {
			ge := g + 1
			for ge < len(order) && order[ge].group == order[g].group {
				ge++
			}
			unit, period := a.keys[order[g].j].unit, int64(uint32(order[g].group))-math.MaxInt32-1
			plain, plainSums = plain[:0], plainSums[:0]
			for r := g; r < ge; {
				re := r + 1
				for re < ge && order[re].row == order[r].row {
					re++
				}
				clear(sum)
				for _, o := range order[r:re] {
					for i, n := range a.vals[int(o.j)*w : int(o.j+1)*w] {
						sum[i] += n
					}
				}
				k := a.keys[order[r].j]
				addPlain(k.to, sum)
				if k.proc == 0 {
					addPlain(k.to, sum) // the row is its own procedure's too
				} else if nonZero(sum) {
					if err := fn(grain, period, unit, k.to, k.proc, sum); err != nil {
						return err
					}
				}
				r = re
			}
			slices.SortFunc(plain, func(x, y plainRow) int { return cmp.Compare(rank[x.to], rank[y.to]) })
			for _, p := range plain {
				if nonZero(p.sums) {
					if err := fn(grain, period, unit, p.to, 0, p.sums); err != nil {
						return err
					}
				}
			}
			g = ge
		}
	}
	return nil
}

// addYears adds the day counts of days to a, keyed by year.
func (a *dayAgg) addYears(days *dayAgg) {
	lastDay, year := int32(math.MinInt32), int32(0)
	for j, k := range days.keys {
		if k.day != lastDay {
			lastDay, year = k.day, int32(monthOf(int64(k.day))/12)
		}
		k.day = year
		dst := a.at(k)
		for i, n := range days.vals[j*days.width : (j+1)*days.width] {
			dst[i] += n
		}
	}
}
