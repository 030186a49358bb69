package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Report groupings.
const (
	ByUnit      = "unit"
	ByProcedure = "procedure"
)

// CountryName names the scope of a report over the whole country.
const CountryName = "Toàn quốc"

// ReportQuery selects a report; see hoso.ReportQuery.
type ReportQuery = hoso.ReportQuery

// Report is a computed report (hoso.Report) that renders itself as CSV, as
// the official form in XLSX, and as text for a terminal.
type Report struct {
	hoso.Report
}

// Table is the report's data.
func (rep *Report) Table() *hoso.Report { return &rep.Report }

// rowKey is the row's unit or procedure code.
func rowKey(r *hoso.ReportRow) string {
	if r.Procedure != "" {
		return r.Procedure
	}
	return r.Unit
}

// counts are a row's raw sums, before the derived fields.
type counts struct {
	carried               int64
	flow                  flowVals
	in, out               int64
	open, paused, overdue int64
}

func (c *counts) addFlow(v []int64) {
	for i := range c.flow {
		c.flow[i] += v[i]
	}
}

func (c *counts) row(r *hoso.ReportRow) {
	f := c.flow
	r.CarriedOver = c.carried
	r.ReceivedOnline, r.ReceivedDirect, r.ReceivedPostal = f[fOnline], f[fDirect], f[fPostal]
	r.Received = f[fOnline] + f[fDirect] + f[fPostal]
	r.TransferredIn, r.TransferredOut = c.in, c.out
	r.ResolvedEarly, r.ResolvedOnTime, r.ResolvedLate = f[fEarly], f[fOnTime], f[fLate]
	r.Resolved = f[fEarly] + f[fOnTime] + f[fLate]
	r.Withdrawn = f[fWithdrawn]
	r.Pending = c.open
	r.PendingPaused = c.paused
	r.PendingOverdue = c.overdue
	r.PendingInDeadline = c.open - c.paused - c.overdue
	r.Rates()
}

func (c counts) zero() bool { return c == counts{} }

// plan is a validated query.
type plan struct {
	q         ReportQuery
	from, to  int64
	scopeName string
	rows      []hoso.ReportRow
	rowOf     map[string]int // seen unit code -> index in rows
	reg       *resolver
}

// Report computes a report from the aggregates, in one read transaction,
// so that AsOfSeq is the projection the numbers come from.
//
// Rows are the units of Level inside Unit's subtree as the registry stood on
// To, every one listed even when all zero. A dossier counts for the
// ancestor at Level of the unit that owned it, also resolved on To: a code
// that no longer exists then is taken as its last version before To. A
// transfer between two units of one row is internal to it and counted
// nowhere; the total sums the rows, so a transfer between two rows shows in
// both its transferred_in and transferred_out.
func (db *DB) Report(ctx context.Context, units *hoso.Units, q ReportQuery) (*Report, error) {
	pl, err := newPlan(units, q)
	if err != nil {
		return nil, err
	}
	r, done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	// One transaction: every statement reads the same snapshot of the WAL.
	tx, err := r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer tx.Rollback() // read only: nothing to keep
	seq, err := readAppliedSeq(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := pl.mapUnits(ctx, tx, db); err != nil {
		return nil, err
	}
	rep := &Report{hoso.Report{
		Unit: pl.q.Unit, Name: pl.scopeName, Level: pl.q.Level, By: pl.q.By,
		From: formatDay(pl.from), To: formatDay(pl.to), AsOfSeq: seq,
	}}
	if pl.q.By == ByProcedure {
		rep.Rows, err = pl.byProcedure(ctx, tx)
	} else {
		rep.Rows, err = pl.byUnit(ctx, tx)
	}
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if rep.Rows == nil {
		rep.Rows = []hoso.ReportRow{} // "rows": [], not null
	}
	rep.Total.Name = totalName
	for i := range rep.Rows {
		rep.Total.Add(&rep.Rows[i])
	}
	rep.Total.Rates()
	return rep, nil
}

func newPlan(units *hoso.Units, q ReportQuery) (*plan, error) {
	if units == nil {
		return nil, fmt.Errorf("report: no units registry")
	}
	pl := &plan{q: q}
	var err error
	if q.From == "" {
		return nil, hoso.FieldErrorf("from", "required (YYYY-MM-DD)")
	}
	if q.To == "" {
		return nil, hoso.FieldErrorf("to", "required (YYYY-MM-DD)")
	}
	if pl.from, err = parseDate("from", q.From); err != nil {
		return nil, err
	}
	if pl.to, err = parseDate("to", q.To); err != nil {
		return nil, err
	}
	if pl.to < pl.from {
		return nil, hoso.FieldErrorf("to", "%s is before from %s", q.To, q.From)
	}
	switch q.By {
	case "":
		pl.q.By = ByUnit
	case ByUnit, ByProcedure:
	default:
		return nil, hoso.FieldErrorf("by", "must be unit or procedure, got %q", q.By)
	}
	reg := newResolver(units, pl.to)
	pl.reg = reg
	scopeLevel := hoso.Level("")
	if q.Unit == "" {
		pl.scopeName = CountryName
	} else {
		u, ok := reg.current(q.Unit)
		if !ok {
			return nil, hoso.FieldErrorf("unit", "unknown unit %q on %s", q.Unit, q.To)
		}
		pl.scopeName = u.Name
		scopeLevel = u.Level
	}
	if q.Level == "" {
		pl.q.Level = scopeLevel
		if q.Unit == "" {
			pl.q.Level = hoso.LevelProvince
		}
	} else if _, err := hoso.ParseLevel(string(q.Level)); err != nil {
		return nil, err
	} else if q.Unit != "" && !levelWithin(q.Level, scopeLevel) {
		return nil, hoso.FieldErrorf("level", "%s is above unit %q, a %s", q.Level, q.Unit, scopeLevel)
	}
	for _, u := range reg.descendants(q.Unit, pl.q.Level) {
		pl.rows = append(pl.rows, hoso.ReportRow{Unit: u.Code, Name: u.Name})
	}
	return pl, nil
}

// mapUnits maps every unit code of the aggregates to its row.
func (pl *plan) mapUnits(ctx context.Context, tx *sql.Tx, db *DB) error {
	index := make(map[string]int, len(pl.rows))
	for i, r := range pl.rows {
		index[r.Unit] = i
	}
	m, err := db.unitMap(ctx, tx, pl.reg)
	if err != nil {
		return err
	}
	level := rank(pl.q.Level)
	pl.rowOf = map[string]int{}
	if level < 0 {
		return nil
	}
	for i, code := range m.codes {
		if a := m.above[i][level]; a != "" {
			if r, ok := index[a]; ok {
				pl.rowOf[code] = r
			}
		}
	}
	return nil
}

// members returns the codes that count in the report, as a JSON array for
// json_each.
func (pl *plan) members() string {
	codes := make([]string, 0, len(pl.rowOf))
	for c := range pl.rowOf {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	b, _ := json.Marshal(codes) // cannot fail: strings only
	return string(b)
}

const flowSums = `sum(received_online), sum(received_direct), sum(received_postal),
	sum(resolved_early), sum(resolved_on_time), sum(resolved_late), sum(withdrawn)`

// inMembers restricts a query to the report's units; with the tables keyed
// by (grain, unit, period) each unit is one short range per segment.
const inMembers = ` AND unit IN (SELECT value FROM json_each(?))`

// Transfers are summed in SQL: those that leave the report's units (from
// the tables' key), those that reach them (from the covering index by
// to_unit, named: without statistics the planner would scan the key), and,
// for a report by unit, the pairs inside its units, which the rows they
// stay inside subtract from both.
const (
	fromMembers = ` AND from_unit IN (SELECT value FROM json_each(?))`
	toMembers   = ` AND to_unit IN (SELECT value FROM json_each(?))`
	fromOutside = ` AND from_unit NOT IN (SELECT value FROM json_each(?))`
	toOutside   = ` AND to_unit NOT IN (SELECT value FROM json_each(?))`
)

func (pl *plan) byUnit(ctx context.Context, tx *sql.Tx) ([]hoso.ReportRow, error) {
	c := make([]counts, len(pl.rows))
	period := rangeSegments(pl.from, pl.to)
	m := pl.members()
	members := []any{m}
	err := sumSegments(ctx, tx, `SELECT unit, `+flowSums+` FROM flow
		WHERE grain = ? AND period BETWEEN ? AND ?`+inMembers+` GROUP BY unit`, period, members, 1,
		func(keys []string, v []int64) {
			if i, ok := pl.rowOf[keys[0]]; ok {
				c[i].addFlow(v)
			}
		})
	if err != nil {
		return nil, err
	}
	for _, q := range []struct {
		query string
		args  []any
		nkeys int
		fn    func(keys []string, v []int64)
	}{
		{`SELECT from_unit, sum(n) FROM transfer WHERE grain = ? AND period BETWEEN ? AND ?` + fromMembers + ` GROUP BY from_unit`,
			members, 1, func(keys []string, v []int64) { c[pl.rowOf[keys[0]]].out += v[0] }},
		{`SELECT to_unit, sum(n) FROM transfer INDEXED BY transfer_to WHERE grain = ? AND period BETWEEN ? AND ?` + toMembers + ` GROUP BY to_unit`,
			members, 1, func(keys []string, v []int64) { c[pl.rowOf[keys[0]]].in += v[0] }},
		{`SELECT from_unit, to_unit, sum(n) FROM transfer WHERE grain = ? AND period BETWEEN ? AND ?` + fromMembers + toMembers + ` GROUP BY from_unit, to_unit`,
			[]any{m, m}, 2, func(keys []string, v []int64) {
				if from, to := pl.rowOf[keys[0]], pl.rowOf[keys[1]]; from == to {
					c[from].out -= v[0] // inside one row
					c[to].in -= v[0]
				}
			}},
	} {
		if err := sumSegments(ctx, tx, q.query, period, q.args, q.nkeys, q.fn); err != nil {
			return nil, err
		}
	}
	err = sumSegments(ctx, tx, `SELECT unit, sum(open) FROM stock
		WHERE grain = ? AND period BETWEEN ? AND ?`+inMembers+` GROUP BY unit`, prefixSegments(pl.from-1), members, 1,
		func(keys []string, v []int64) {
			if i, ok := pl.rowOf[keys[0]]; ok {
				c[i].carried += v[0]
			}
		})
	if err != nil {
		return nil, err
	}
	err = sumSegments(ctx, tx, `SELECT unit, sum(open), sum(paused), sum(overdue) FROM stock
		WHERE grain = ? AND period BETWEEN ? AND ?`+inMembers+` GROUP BY unit`, prefixSegments(pl.to), members, 1,
		func(keys []string, v []int64) {
			if i, ok := pl.rowOf[keys[0]]; ok {
				c[i].open += v[0]
				c[i].paused += v[1]
				c[i].overdue += v[2]
			}
		})
	if err != nil {
		return nil, err
	}
	rows := pl.rows
	for i := range rows {
		c[i].row(&rows[i])
	}
	return rows, nil
}

// byProcedure has one row per procedure with anything to count among the
// dossiers of the report's units; a transfer counts when it crosses the
// border of those units.
func (pl *plan) byProcedure(ctx context.Context, tx *sql.Tx) ([]hoso.ReportRow, error) {
	c := map[string]*counts{}
	get := func(proc string) *counts {
		if c[proc] == nil {
			c[proc] = &counts{}
		}
		return c[proc]
	}
	m := pl.members()
	members := []any{m}
	period := rangeSegments(pl.from, pl.to)
	err := sumSegments(ctx, tx, `SELECT procedure, `+flowSums+` FROM flow_proc
		WHERE grain = ? AND period BETWEEN ? AND ?`+inMembers+` GROUP BY procedure`, period, members, 1,
		func(keys []string, v []int64) { get(keys[0]).addFlow(v) })
	if err != nil {
		return nil, err
	}
	err = sumSegments(ctx, tx, `SELECT procedure, sum(n) FROM transfer_proc
		WHERE grain = ? AND period BETWEEN ? AND ?`+fromMembers+toOutside+` GROUP BY procedure`, period, []any{m, m}, 1,
		func(keys []string, v []int64) { get(keys[0]).out += v[0] })
	if err != nil {
		return nil, err
	}
	err = sumSegments(ctx, tx, `SELECT procedure, sum(n) FROM transfer_proc INDEXED BY transfer_proc_to
		WHERE grain = ? AND period BETWEEN ? AND ?`+toMembers+fromOutside+` GROUP BY procedure`, period, []any{m, m}, 1,
		func(keys []string, v []int64) { get(keys[0]).in += v[0] })
	if err != nil {
		return nil, err
	}
	err = sumSegments(ctx, tx, `SELECT procedure, sum(open) FROM stock_proc
		WHERE grain = ? AND period BETWEEN ? AND ?`+inMembers+` GROUP BY procedure`, prefixSegments(pl.from-1), members, 1,
		func(keys []string, v []int64) { get(keys[0]).carried += v[0] })
	if err != nil {
		return nil, err
	}
	err = sumSegments(ctx, tx, `SELECT procedure, sum(open), sum(paused), sum(overdue) FROM stock_proc
		WHERE grain = ? AND period BETWEEN ? AND ?`+inMembers+` GROUP BY procedure`, prefixSegments(pl.to), members, 1,
		func(keys []string, v []int64) {
			p := get(keys[0])
			p.open += v[0]
			p.paused += v[1]
			p.overdue += v[2]
		})
	if err != nil {
		return nil, err
	}
	procs := make([]string, 0, len(c))
	for proc, v := range c {
		if !v.zero() {
			procs = append(procs, proc)
		}
	}
	sort.Strings(procs)
	rows := make([]hoso.ReportRow, len(procs))
	for i, proc := range procs {
		rows[i] = hoso.ReportRow{Procedure: proc, Name: proc}
		c[proc].row(&rows[i])
	}
	return rows, nil
}

// sumSegments runs query once per segment with (grain, lo, hi) followed by
// extra as arguments; each result row is nkeys text columns then integers.
func sumSegments(ctx context.Context, tx *sql.Tx, query string, segs []segment, extra []any, nkeys int, fn func(keys []string, v []int64)) error {
	for _, s := range segs {
		if s.lo > s.hi {
			continue
		}
		args := append([]any{s.grain, s.lo, s.hi}, extra...)
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		cols, err := rows.Columns()
		if err != nil {
			rows.Close()
			return err
		}
		keys := make([]string, nkeys)
		vals := make([]int64, len(cols)-nkeys)
		dest := make([]any, len(cols))
		for i := range keys {
			dest[i] = &keys[i]
		}
		for i := range vals {
			dest[nkeys+i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			fn(keys, vals)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// SeenUnits returns the codes, among those the read model has seen, of the
// units inside unit's subtree (unit included) as the registry stood on the
// local date of at; for ListQuery.Units and UnitBacklog. A code that no
// longer exists then is placed by its last version before.
func (db *DB) SeenUnits(ctx context.Context, units *hoso.Units, unit string, at time.Time) ([]string, error) {
	r, done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := r.QueryContext(ctx, `SELECT code FROM units_seen ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("units: %w", err)
	}
	defer rows.Close()
	res := newResolver(units, hoso.LocalDate(at))
	var out []string
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			return nil, fmt.Errorf("units: %w", err)
		}
		if unit == "" || res.within(code, unit) {
			out = append(out, code)
		}
	}
	return out, rows.Err()
}
