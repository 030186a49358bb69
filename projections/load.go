package projections

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/hoso-ledger/hoso"
)

// loader folds a whole stream into a new read model file, for a rebuild.
// Nobody reads that file before it is complete and a failed rebuild throws
// it away, so the loader keeps every count in memory for the whole run and
// writes each row of the file exactly once: a dossier when it reaches a
// state no event leaves (returned, withdrawn), the open ones and every
// aggregate row at the end, sorted by the tables' keys. The live projector
// (Projector.Apply) keeps its per-batch transaction instead.
//
// Memory holds the dossiers not yet returned or withdrawn, and one entry per
// (unit, procedure, day) that has a count, whatever the number of events.
type loader struct {
	db    *DB
	units *hoso.Units
	log   *slog.Logger

	dossiers map[string]*hoso.Dossier // not yet returned or withdrawn
	closed   []*hoso.Dossier          // returned or withdrawn, not yet written

	// Unit and procedure codes are interned: the aggregates are keyed by
	// small numbers. Code 0 is "".
	codes []string
	ids   map[string]uint32
	seen  map[uint32]bool // unit codes that have a count

	flows, stocks, transfers *dayAgg

	applied uint64
	last    hoso.LedgerEntry
}

// closedBatch is how many returned or withdrawn dossiers wait in memory
// before they are written.
const closedBatch = 20_000

func newLoader(db *DB, units *hoso.Units, log *slog.Logger) *loader {
	return &loader{
		db: db, units: units, log: log,
		dossiers:  map[string]*hoso.Dossier{},
		codes:     []string{""},
		ids:       map[string]uint32{"": 0},
		seen:      map[uint32]bool{},
		flows:     newDayAgg(nFlow),
		stocks:    newDayAgg(nStock),
		transfers: newDayAgg(1),
	}
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
	if len(l.closed) >= closedBatch {
		return l.writeClosed(ctx)
	}
	return nil
}

// writeClosed writes the returned and withdrawn dossiers folded so far.
func (l *loader) writeClosed(ctx context.Context) error {
	tx, err := l.db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if err := textDossiers(ctx, tx, l.closed); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	clear(l.closed)
	l.closed = l.closed[:0]
	return nil
}

// finish writes what the load holds in memory — the dossiers, the units
// seen, every aggregate row at the three grains and the position reached —
// and makes the indexes, in one transaction.
func (l *loader) finish(ctx context.Context, indexes []string) error {
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
	if err := l.writeAggregates(ctx, tx); err != nil {
		return err
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
	l.flows.add(dayKey{l.id(unit), 0, l.id(proc), int32(day)}, i, 1)
}

func (l *loader) transfer(from, to, proc string, day int64) {
	l.transfers.add(dayKey{l.id(from), l.id(to), l.id(proc), int32(day)}, 0, 1)
}

func (l *loader) stock(unit, proc string, day int64, i int, delta int64) {
	l.stocks.add(dayKey{l.id(unit), 0, l.id(proc), int32(day)}, i, delta)
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

// writeAggregates writes the flow, stock and transfer tables, with and
// without the procedure, at the three grains.
func (l *loader) writeAggregates(ctx context.Context, tx *sql.Tx) error {
	// rank orders interned codes as their strings sort.
	order := make([]uint32, len(l.codes))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(l.codes[a], l.codes[b]) })
	rank := make([]uint32, len(l.codes))
	for r, id := range order {
		rank[id] = uint32(r)
	}
	flowCols := `received_online, received_direct, received_postal, resolved_early, resolved_on_time, resolved_late, withdrawn`
	tables := []struct {
		agg         *dayAgg
		plain, proc *sqlText
		transfer    bool
	}{
		{l.flows,
			newSQLText(ctx, tx, `INSERT INTO flow (grain, period, unit, `+flowCols+`)`),
			newSQLText(ctx, tx, `INSERT INTO flow_proc (grain, period, procedure, unit, `+flowCols+`)`),
			false},
		{l.stocks,
			newSQLText(ctx, tx, `INSERT INTO stock (grain, period, unit, open, paused, overdue)`),
			newSQLText(ctx, tx, `INSERT INTO stock_proc (grain, period, procedure, unit, open, paused, overdue)`),
			false},
		{l.transfers,
			newSQLText(ctx, tx, `INSERT INTO transfer (grain, period, from_unit, to_unit, n)`),
			newSQLText(ctx, tx, `INSERT INTO transfer_proc (grain, period, procedure, from_unit, to_unit, n)`),
			true},
	}
	for _, t := range tables {
		err := t.agg.rows(rank, func(grain int, period int64, unit, to, proc uint32, v []int64) error {
			w := t.plain
			if proc != 0 {
				w = t.proc
			}
			w.row().int(int64(grain)).int(period)
			if proc != 0 {
				w.str(l.codes[proc])
			}
			w.str(l.codes[unit])
			if t.transfer {
				w.str(l.codes[to])
			}
			for _, n := range v {
				w.int(n)
			}
			return w.end()
		})
		if err := cmp.Or(err, t.plain.flush(), t.proc.flush()); err != nil {
			return fmt.Errorf("write aggregates: %w", err)
		}
	}
	return nil
}

// rows calls fn with every row of the table at each grain, in the order of
// the tables' keys: grain, unit, period, then procedure and the unit
// reached. A row without procedure (proc 0) sums the procedures. Rows whose
// counters are all zero are left out: they add nothing to a sum.
func (a *dayAgg) rows(rank []uint32, fn func(grain int, period int64, unit, to, proc uint32, v []int64) error) error {
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
	for grain := grainDay; grain <= grainYear; grain++ {
		periodOf := func(day int32) int64 {
			switch grain {
			case grainMonth:
				return monthOf(int64(day))
			case grainYear:
				return monthOf(int64(day)) / 12
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
