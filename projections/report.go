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
	unassigned            int64
}

func (c *counts) addFlow(v []int64) {
	for i := range c.flow {
		c.flow[i] += v[i]
	}
}

func (c *counts) add(o *counts) {
	c.carried += o.carried
	c.addFlow(o.flow[:])
	c.in += o.in
	c.out += o.out
	c.open += o.open
	c.paused += o.paused
	c.overdue += o.overdue
	c.unassigned += o.unassigned
}

// intake is carried over + received + transferred in.
func (c *counts) intake() int64 {
	return c.carried + c.flow[fOnline] + c.flow[fDirect] + c.flow[fPostal] + c.in
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
	r.Unassigned = c.unassigned
	r.Rates()
}

func (c counts) zero() bool { return c == counts{} }

// plan is a validated query.
type plan struct {
	q         ReportQuery
	from, to  int64
	scopeName string
	// scopeRank is the rank of the scope's level, -1 for the whole
	// country; scopeAuth the rank of its authority level.
	scopeRank, scopeAuth int
	// rows are the units of the level (every one, even when zero), then
	// the own rows mapUnits finds; rowIndex indexes them by unit.
	rows     []hoso.ReportRow
	rowIndex map[string]int
	// members are the seen codes inside the scope, each with its row.
	members []member
	reg     *resolver
}

// member is a unit code that counts in the report.
type member struct {
	code       string
	row        int  // index in plan.rows
	auth       int8 // rank of its authority level
	unassigned bool
}

// Report computes a report from the aggregates, in one read transaction,
// so that AsOfSeq is the projection the numbers come from.
//
// Rows are the units of Level inside Unit's subtree as the registry stood on
// To, every one listed even when all zero, after the own rows of the units
// above Level that hold dossiers themselves. A dossier counts where its
// unit stands on To (placement): in the row of its unit's ancestor at
// Level, else in the own row of its authority unit. A transfer between two
// units of one row is internal to it and counted nowhere; the total sums
// the rows, so a transfer between two rows shows in both its
// transferred_in and transferred_out. Levels splits the total by
// authority level.
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
	mc, pairs, err := pl.byCode(ctx, tx)
	if err == nil && pl.q.By == ByProcedure {
		rep.Rows, err = pl.byProcedure(ctx, tx)
	} else if err == nil {
		rep.Rows = pl.byUnit(mc, pairs)
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
	rep.Levels = pl.levels(mc, pairs)
	return rep, nil
}

func newPlan(units *hoso.Units, q ReportQuery) (*plan, error) {
	if units == nil {
		return nil, fmt.Errorf("report: no units registry")
	}
	pl := &plan{q: q, scopeRank: -1}
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
			return nil, unknownScope(reg, q)
		}
		pl.scopeName = u.Name
		scopeLevel = u.Level
		pl.scopeRank = rank(u.Level)
		pl.scopeAuth = pl.scopeRank
		if u.Level == hoso.LevelOffice {
			p := reg.place(q.Unit)
			pl.scopeAuth = int(p.auth)
		}
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
	list := reg.descendants(q.Unit, pl.q.Level)
	if pl.q.Level == hoso.LevelDistrict && pl.scopeRank < rank(hoso.LevelDistrict) {
		// After the 2025 reform a province's communes are the level below
		// it: a ward directly under a province stands where a district
		// would.
		if extra := reg.wardsUnderProvinces(q.Unit); len(extra) > 0 {
			list = append(list, extra...)
			sort.Slice(list, func(i, j int) bool { return list[i].Code < list[j].Code })
		}
	}
	pl.rowIndex = make(map[string]int, len(list))
	for _, u := range list {
		pl.rowIndex[u.Code] = len(pl.rows)
		pl.rows = append(pl.rows, hoso.ReportRow{Unit: u.Code, Name: u.Name, Level: u.Level})
	}
	return pl, nil
}

// unknownScope is the error for a scope unit that does not exist on the
// report's last day; for one that existed before, it says until when and
// which report holds its dossiers then.
func unknownScope(reg *resolver, q ReportQuery) error {
	v, ok := reg.lastBefore(q.Unit)
	if !ok || v.ValidTo == "" {
		return hoso.FieldErrorf("unit", "unknown unit %q on %s", q.Unit, q.To)
	}
	msg := fmt.Sprintf("unit %q (%s) no longer exists on %s: it ended on %s; ask for a period that ends before then", q.Unit, v.Name, q.To, v.ValidTo)
	if eff, _, ok := reg.effective(q.Unit); ok {
		if u, ok := reg.current(eff); ok {
			msg += fmt.Sprintf(", or for %s (%s), whose report counts its dossiers", eff, u.Name)
		}
	}
	return hoso.FieldErrorf("unit", "%s", msg)
}

// mapUnits finds the report's member codes among every unit code of the
// aggregates, and the row of each, adding own rows as it meets them.
func (pl *plan) mapUnits(ctx context.Context, tx *sql.Tx, db *DB) error {
	m, err := db.unitMap(ctx, tx, pl.reg)
	if err != nil {
		return err
	}
	level := rank(pl.q.Level)
	if level < 0 {
		return nil
	}
	for i, code := range m.codes {
		p := &m.places[i]
		if p.auth < 0 || pl.q.Unit != "" && p.above[pl.scopeRank] != pl.q.Unit {
			continue
		}
		unit, own := p.rowUnit(level)
		row, ok := pl.rowIndex[unit]
		if !ok {
			// An own row, or a unit the level's list could not foresee:
			// no dossier is left outside the table.
			u, _ := pl.reg.current(unit)
			r := hoso.ReportRow{Unit: unit, Name: u.Name, Level: u.Level, Own: own}
			if own {
				r.Name = ownName(u)
			}
			row = len(pl.rows)
			pl.rows = append(pl.rows, r)
			pl.rowIndex[unit] = row
		}
		pl.members = append(pl.members, member{code: code, row: row, auth: p.auth, unassigned: p.unassigned})
	}
	return nil
}

// rowUnit is the unit of the row that a code counts in, in a report whose
// rows are of the level of rank r, and whether that is an own row: its
// unit at that level; else, in a chain without that level (a commune
// directly under its province, in a report by district), the unit just
// below it; else the own row of its authority unit, which is above the
// level.
func (p *placement) rowUnit(r int) (string, bool) {
	if p.above[r] != "" {
		return p.above[r], false
	}
	for k := r + 1; k <= int(p.auth); k++ {
		if p.above[k] != "" {
			return p.above[k], false
		}
	}
	return p.authUnit(), true
}

// unassignedList is memberList for the unassigned members, "" when none.
func (pl *plan) unassignedList() string {
	var codes []string
	for _, m := range pl.members {
		if m.unassigned {
			codes = append(codes, m.code)
		}
	}
	if codes == nil {
		return ""
	}
	sort.Strings(codes)
	b, _ := json.Marshal(codes) // cannot fail: strings only
	return string(b)
}

// memberList returns the member codes as a JSON array for json_each.
func (pl *plan) memberList() string {
	codes := make([]string, len(pl.members))
	for i, m := range pl.members {
		codes[i] = m.code
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

// pair is the transfers from one member to another.
type pair struct {
	from, to int // indexes in plan.members
	n        int64
}

// byCode sums the aggregates of each member code (every transfer that
// leaves or reaches it counted), and the transfers between members.
func (pl *plan) byCode(ctx context.Context, tx *sql.Tx) ([]counts, []pair, error) {
	c := make([]counts, len(pl.members))
	if len(pl.members) == 0 {
		return c, nil, nil
	}
	index := make(map[string]int, len(pl.members))
	for i, m := range pl.members {
		index[m.code] = i
	}
	var pairs []pair
	period := rangeSegments(pl.from, pl.to)
	m := pl.memberList()
	members := []any{m}
	for _, q := range []struct {
		query string
		segs  []segment
		args  []any
		nkeys int
		fn    func(keys []string, v []int64)
	}{
		{`SELECT unit, ` + flowSums + ` FROM flow WHERE grain = ? AND period BETWEEN ? AND ?` + inMembers + ` GROUP BY unit`,
			period, members, 1, func(keys []string, v []int64) { c[index[keys[0]]].addFlow(v) }},
		{`SELECT from_unit, sum(n) FROM transfer WHERE grain = ? AND period BETWEEN ? AND ?` + fromMembers + ` GROUP BY from_unit`,
			period, members, 1, func(keys []string, v []int64) { c[index[keys[0]]].out += v[0] }},
		{`SELECT to_unit, sum(n) FROM transfer INDEXED BY transfer_to WHERE grain = ? AND period BETWEEN ? AND ?` + toMembers + ` GROUP BY to_unit`,
			period, members, 1, func(keys []string, v []int64) { c[index[keys[0]]].in += v[0] }},
		{`SELECT from_unit, to_unit, sum(n) FROM transfer WHERE grain = ? AND period BETWEEN ? AND ?` + fromMembers + toMembers + ` GROUP BY from_unit, to_unit`,
			period, []any{m, m}, 2, func(keys []string, v []int64) {
				pairs = append(pairs, pair{index[keys[0]], index[keys[1]], v[0]})
			}},
		{`SELECT unit, sum(open) FROM stock WHERE grain = ? AND period BETWEEN ? AND ?` + inMembers + ` GROUP BY unit`,
			prefixSegments(pl.from - 1), members, 1, func(keys []string, v []int64) { c[index[keys[0]]].carried += v[0] }},
		{`SELECT unit, sum(open), sum(paused), sum(overdue) FROM stock WHERE grain = ? AND period BETWEEN ? AND ?` + inMembers + ` GROUP BY unit`,
			prefixSegments(pl.to), members, 1, func(keys []string, v []int64) {
				x := &c[index[keys[0]]]
				x.open += v[0]
				x.paused += v[1]
				x.overdue += v[2]
			}},
	} {
		if err := sumSegments(ctx, tx, q.query, q.segs, q.args, q.nkeys, q.fn); err != nil {
			return nil, nil, err
		}
	}
	for i := range c {
		if pl.members[i].unassigned {
			c[i].unassigned = c[i].intake()
		}
	}
	return c, pairs, nil
}

// byUnit folds the members' counts into their rows: a transfer between two
// members of one row is internal to it. Own rows with nothing to count are
// left out; the others come first, the scope's own desk first (by level,
// then code), then the units of the level in code order.
func (pl *plan) byUnit(mc []counts, pairs []pair) []hoso.ReportRow {
	c := make([]counts, len(pl.rows))
	for i, m := range pl.members {
		c[m.row].add(&mc[i])
	}
	for _, p := range pairs {
		from, to := pl.members[p.from], pl.members[p.to]
		if from.row == to.row {
			c[from.row].out -= p.n
			c[to.row].in -= p.n
			if to.unassigned {
				c[to.row].unassigned -= p.n
			}
		}
	}
	var own, listed []hoso.ReportRow
	for i := range pl.rows {
		r := pl.rows[i]
		c[i].row(&r)
		switch {
		case r.Own && !c[i].zero():
			own = append(own, r)
		case !r.Own:
			listed = append(listed, r)
		}
	}
	sort.SliceStable(own, func(i, j int) bool {
		if a, b := rank(own[i].Level), rank(own[j].Level); a != b {
			return a < b
		}
		return own[i].Unit < own[j].Unit
	})
	sort.SliceStable(listed, func(i, j int) bool { return listed[i].Unit < listed[j].Unit })
	return append(own, listed...)
}

// levelNames name the Levels entries, as the published reports do.
var levelNames = [3]string{"Cấp tỉnh", "Cấp huyện", "Cấp xã"}

// levels splits the report by authority level: one entry per level from
// the scope's own down to the ward, for each level that has a unit inside
// the scope or anything to count. An entry counts a transfer when the
// rows do or when it crosses from one level to another, so that every
// entry balances.
func (pl *plan) levels(mc []counts, pairs []pair) []hoso.ReportRow {
	var c [3]counts
	for i, m := range pl.members {
		c[m.auth].add(&mc[i])
	}
	for _, p := range pairs {
		from, to := pl.members[p.from], pl.members[p.to]
		if from.auth == to.auth && (pl.q.By == ByProcedure || from.row == to.row) {
			c[from.auth].out -= p.n
			c[to.auth].in -= p.n
			if to.unassigned {
				c[to.auth].unassigned -= p.n
			}
		}
	}
	out := []hoso.ReportRow{}
	for k := pl.scopeAuth; k < len(c); k++ {
		if k == pl.scopeAuth || !c[k].zero() || pl.reg.hasLevel(pl.q.Unit, levels[k]) {
			r := hoso.ReportRow{Name: levelNames[k], Level: levels[k]}
			c[k].row(&r)
			out = append(out, r)
		}
	}
	return out
}

// kindTiers name a unit's own desk after its kind, as published reports
// do ("Quận Long Biên (cấp quận)"); tiers name it after its level when its
// kind is not one of them.
var (
	kindTiers = map[string]string{
		"Tỉnh": "cấp tỉnh", "Thành phố Trung ương": "cấp thành phố",
		"Huyện": "cấp huyện", "Quận": "cấp quận", "Thị xã": "cấp thị xã", "Thành phố": "cấp thành phố",
		"Phường": "cấp phường", "Xã": "cấp xã", "Thị trấn": "cấp thị trấn", "Đặc khu": "cấp đặc khu",
	}
	tiers = map[hoso.Level]string{hoso.LevelProvince: "cấp tỉnh", hoso.LevelDistrict: "cấp huyện", hoso.LevelWard: "cấp xã"}
)

// ownName names the own row of unit u.
func ownName(u hoso.Unit) string {
	tier, ok := kindTiers[u.Kind]
	if !ok {
		tier = tiers[u.Level]
	}
	return u.Name + " (" + tier + ")"
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
	if len(pl.members) == 0 {
		return nil, nil
	}
	m := pl.memberList()
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
	// A procedure's unassigned dossiers: the intake of the unassigned
	// members, a transfer counted when it comes from outside the members.
	if u := pl.unassignedList(); u != "" {
		for _, q := range []struct {
			query string
			segs  []segment
			args  []any
		}{
			{`SELECT procedure, sum(received_online) + sum(received_direct) + sum(received_postal) FROM flow_proc
				WHERE grain = ? AND period BETWEEN ? AND ?` + inMembers + ` GROUP BY procedure`, period, []any{u}},
			{`SELECT procedure, sum(n) FROM transfer_proc INDEXED BY transfer_proc_to
				WHERE grain = ? AND period BETWEEN ? AND ?` + toMembers + fromOutside + ` GROUP BY procedure`, period, []any{u, m}},
			{`SELECT procedure, sum(open) FROM stock_proc
				WHERE grain = ? AND period BETWEEN ? AND ?` + inMembers + ` GROUP BY procedure`, prefixSegments(pl.from - 1), []any{u}},
		} {
			err := sumSegments(ctx, tx, q.query, q.segs, q.args, 1, func(keys []string, v []int64) { get(keys[0]).unassigned += v[0] })
			if err != nil {
				return nil, err
			}
		}
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
