package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"pgregory.net/rapid"
)

var (
	unitsOnce sync.Once
	units     *hoso.Units
	calendar  *hoso.Calendar
)

func registry(t rapid.TB) (*hoso.Units, *hoso.Calendar) {
	t.Helper()
	unitsOnce.Do(func() {
		var err error
		if units, err = hoso.LoadUnits(hoso.NamedReader{Name: "offices.csv", R: strings.NewReader(testOffices)}); err != nil {
			panic(err)
		}
		if calendar, err = hoso.NewCalendar(); err != nil {
			panic(err)
		}
	})
	return units, calendar
}

// testOffices are operators' own desks the tests' registry adds: one
// counts at the level of the unit it is attached to.
const testOffices = `code,name,level,kind,parent,valid_from,valid_to
HN-TTPVHCC,Trung tâm Phục vụ hành chính công Hà Nội,office,Trung tâm,01,,
LB-MOTCUA,Bộ phận một cửa quận Long Biên,office,Bộ phận một cửa,004,,2025-07-01
VH-TIEPNHAN,Điểm tiếp nhận phường Việt Hưng,office,Điểm tiếp nhận,00127,,2025-07-01
`

// Real wards of quận Hoàn Kiếm (002) and quận Long Biên (004) in 2020.
var (
	wardsHoanKiem = []string{"00037", "00040", "00043", "00046", "00049", "00052", "00055", "00058"}
	wardsLongBien = []string{"00115", "00118", "00121", "00124", "00127", "00130", "00133", "00136", "00139", "00142"}
	procedures    = []string{"1.001776", "1.003003", "2.000908"}
)

// vn builds a local time in Vietnam.
func vn(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, hoso.VietnamZone)
}

func openDB(t testing.TB) (*projections.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "read.db")
	db, err := projections.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// toMsgs numbers events from seq 1 and stores them as the ledger would.
func toMsgs(t rapid.TB, events []*hoso.Event) []hoso.LedgerEntry {
	t.Helper()
	msgs := make([]hoso.LedgerEntry, len(events))
	for i, e := range events {
		e.Seq = uint64(i + 1)
		if e.RecordedAt.IsZero() {
			e.RecordedAt = e.At
		}
		data, err := e.MarshalStored()
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = hoso.LedgerEntry{Seq: e.Seq, Time: e.RecordedAt, Data: data}
	}
	return msgs
}

// stored returns the events as the ledger gives them back (UTC times,
// seq set), for comparisons with what the projection stores.
func stored(t rapid.TB, events []*hoso.Event) []*hoso.Event {
	t.Helper()
	out := make([]*hoso.Event, len(events))
	for i, m := range toMsgs(t, events) {
		e, err := m.Event()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e
	}
	return out
}

// dossierBuilder writes one dossier's events, checking each against the
// state machine as the ingester would.
type dossierBuilder struct {
	t      rapid.TB
	d      hoso.Dossier
	events []*hoso.Event
}

func newDossier(t rapid.TB, code, unit, proc string, ch hoso.Channel, at, due time.Time) *dossierBuilder {
	b := &dossierBuilder{t: t}
	b.add(&hoso.Event{Type: hoso.EventReceived, Dossier: code, Unit: unit, At: at, Procedure: proc, Channel: ch, Due: due})
	return b
}

func (b *dossierBuilder) add(e *hoso.Event) *dossierBuilder {
	b.t.Helper()
	if e.Dossier == "" {
		e.Dossier = b.d.Code
	}
	if e.Unit == "" {
		e.Unit = b.d.Owner
	}
	if e.Type == hoso.EventResolved && e.Outcome == "" {
		e.Outcome = hoso.OutcomeApproved
	}
	e.ID = fmt.Sprintf("%s-%d", e.Dossier, b.d.Version+1)
	if err := b.d.Apply(e); err != nil {
		b.t.Fatalf("test history: %v", err)
	}
	e.Version = b.d.Version
	b.events = append(b.events, e)
	return b
}

func (b *dossierBuilder) transfer(at time.Time, to string) *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventTransferred, At: at, ToUnit: to})
}
func (b *dossierBuilder) pause(at time.Time) *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventSupplementRequested, At: at, Reason: "thiếu giấy tờ"})
}
func (b *dossierBuilder) resume(at, due time.Time) *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventSupplementReceived, At: at, Due: due})
}
func (b *dossierBuilder) extend(at, promised time.Time) *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventExtended, At: at, Due: promised, Reason: "xin lỗi"})
}
func (b *dossierBuilder) overdue() *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventOverdue, At: b.d.Due})
}
func (b *dossierBuilder) resolve(at time.Time) *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventResolved, At: at})
}
func (b *dossierBuilder) ret(at time.Time) *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventReturned, At: at})
}
func (b *dossierBuilder) withdraw(at time.Time) *dossierBuilder {
	return b.add(&hoso.Event{Type: hoso.EventWithdrawn, At: at, Reason: "công dân rút"})
}

// concat puts the dossiers' events one dossier after another.
func concat(bs ...*dossierBuilder) []*hoso.Event {
	var out []*hoso.Event
	for _, b := range bs {
		out = append(out, b.events...)
	}
	return out
}

// genHistory draws a valid history of several dossiers, interleaved in a
// random ledger order that keeps each dossier's own order.
func genHistory(t *rapid.T) []*hoso.Event {
	owners := append(append([]string{}, wardsHoanKiem...), wardsLongBien...)
	owners = append(owners, "LB-MOTCUA", "VH-TIEPNHAN")
	// Transfers go between wards, and up to the districts, the city and
	// their offices.
	targets := append(append([]string{}, owners...), "002", "004", "01", "HN-TTPVHCC")
	base := vn(2020, 1, 1, 0, 0)
	minutes := func(label string, lo, hi int64) time.Duration {
		return time.Duration(rapid.Int64Range(lo, hi).Draw(t, label)) * time.Minute
	}
	n := rapid.IntRange(1, 30).Draw(t, "dossiers")
	var perDossier [][]*hoso.Event
	for i := range n {
		unit := rapid.SampledFrom(owners).Draw(t, "unit")
		at := base.Add(minutes("received", 0, 120*24*60))
		due := at.Add(minutes("due", 0, 30*24*60))
		b := newDossier(t, fmt.Sprintf("D%03d", i), unit, rapid.SampledFrom(procedures).Draw(t, "procedure"),
			rapid.SampledFrom([]hoso.Channel{hoso.ChannelDirect, hoso.ChannelOnline, hoso.ChannelPostal}).Draw(t, "channel"), at, due)
		steps := rapid.IntRange(0, 7).Draw(t, "steps")
		for range steps {
			last := b.d.LastAt
			at := last.Add(minutes("step", 0, 20*24*60))
			var options []string
			switch b.d.State {
			case hoso.StateProcessing:
				options = []string{"transfer", "transfer", "pause", "extend", "resolve", "resolve", "withdraw"}
				if !b.d.OverdueMarked && !b.d.Due.Before(last) {
					options = append(options, "overdue")
				}
			case hoso.StateAwaitingSupplement:
				options = []string{"resume", "resume", "resolve", "withdraw"}
			case hoso.StateResolved:
				options = []string{"return"}
			}
			if len(options) == 0 {
				break
			}
			switch rapid.SampledFrom(options).Draw(t, "event") {
			case "transfer":
				to := rapid.SampledFrom(targets).Draw(t, "to_unit")
				if to == b.d.Owner {
					continue
				}
				b.transfer(at, to)
			case "pause":
				b.pause(at)
			case "resume":
				b.resume(at, at.Add(minutes("new_due", 0, 20*24*60)))
			case "extend":
				b.extend(at, at.Add(minutes("promised", 0, 10*24*60)))
			case "overdue":
				b.overdue()
			case "resolve":
				b.resolve(at)
			case "return":
				b.ret(at)
			case "withdraw":
				b.withdraw(at)
			}
		}
		perDossier = append(perDossier, b.events)
	}
	var out []*hoso.Event
	for len(perDossier) > 0 {
		i := rapid.IntRange(0, len(perDossier)-1).Draw(t, "next")
		out = append(out, perDossier[i][0])
		if perDossier[i] = perDossier[i][1:]; len(perDossier[i]) == 0 {
			perDossier = append(perDossier[:i], perDossier[i+1:]...)
		}
	}
	return out
}

// naivePlace is where a unit code's dossiers stand in a naive report.
type naivePlace struct {
	ok         bool   // inside the scope, and known
	row        string // the row's unit
	own        bool
	auth       hoso.Level
	unassigned bool
}

// naiveLevels are the authority levels, from the top.
var naiveLevels = []hoso.Level{hoso.LevelProvince, hoso.LevelDistrict, hoso.LevelWard}

// naiveLevelRank ranks the four levels from the top.
func naiveLevelRank(l hoso.Level) int {
	return slices.Index([]hoso.Level{hoso.LevelProvince, hoso.LevelDistrict, hoso.LevelWard, hoso.LevelOffice}, l)
}

// naiveEffective is the unit that holds code's dossiers on asOf, by the
// rules of docs/read-model.md: the code's unit then; from the reform on,
// the one commune the mapping names (the one of several that took the
// whole population); else, unassigned, the nearest unit up its last
// parents that exists then, or the one province holding every successor
// of its wards.
func naiveEffective(u *hoso.Units, code string, asOf time.Time) (string, bool, bool) {
	if _, ok := u.At(code, asOf); ok {
		return code, true, true
	}
	date := asOf.Format(time.DateOnly)
	reformed := date >= hoso.ReformDate
	if reformed {
		targets := map[string]bool{}
		var whole []string
		for _, s := range u.Successors(code) {
			targets[s.Code] = true
			if strings.HasSuffix(s.Note, "toàn bộ dân số") {
				whole = append(whole, s.Code)
			}
		}
		pick := ""
		switch {
		case len(targets) == 1:
			for c := range targets {
				pick = c
			}
		case len(whole) == 1:
			pick = whole[0]
		}
		if _, ok := u.At(pick, asOf); ok && pick != "" {
			return pick, true, true
		}
	}
	last := func(c string) (hoso.Unit, bool) {
		h := u.History(c)
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].ValidFrom < date {
				return h[i], true
			}
		}
		return hoso.Unit{}, false
	}
	c := code
	for range 8 {
		v, ok := last(c)
		if !ok || v.Parent == "" {
			break
		}
		if _, ok := u.At(v.Parent, asOf); ok {
			return v.Parent, false, true
		}
		c = v.Parent
	}
	if !reformed {
		return "", false, false
	}
	// The wards the unit had on its last day, and where they went.
	v, ok := last(code)
	if !ok {
		return "", false, false
	}
	wards := []string{code}
	if v.Level != hoso.LevelWard {
		end, _ := time.ParseInLocation(time.DateOnly, v.ValidTo, hoso.VietnamZone)
		wards = nil
		for _, w := range u.Descendants(code, hoso.LevelWard, end.Add(-12*time.Hour)) {
			wards = append(wards, w.Code)
		}
	}
	provinces := map[string]bool{}
	for _, w := range wards {
		for _, s := range u.Successors(w) {
			if p := u.Province(s.Code, asOf); p != "" {
				provinces[p] = true
			}
		}
	}
	if len(provinces) == 1 {
		for p := range provinces {
			return p, false, true
		}
	}
	return "", false, false
}

// naiveReport computes a report straight from the events, by the
// definitions of docs/design.md §2 and docs/read-model.md: fold each
// dossier to the start of from and to the end of to, and walk its events
// inside the period.
func naiveReport(t rapid.TB, events []*hoso.Event, q projections.ReportQuery) (rows []hoso.ReportRow, total hoso.ReportRow, levels []hoso.ReportRow) {
	t.Helper()
	u, _ := registry(t)
	from, err := time.ParseInLocation(time.DateOnly, q.From, hoso.VietnamZone)
	if err != nil {
		t.Fatal(err)
	}
	to, err := time.ParseInLocation(time.DateOnly, q.To, hoso.VietnamZone)
	if err != nil {
		t.Fatal(err)
	}
	end := to.AddDate(0, 0, 1) // the end of to
	asOf := to.Add(12 * time.Hour)
	level := q.Level
	scopeLevel := hoso.LevelProvince
	scopeAuth := hoso.LevelProvince
	if q.Unit != "" {
		su, _ := u.At(q.Unit, asOf)
		scopeLevel, scopeAuth = su.Level, su.Level
		if su.Level == hoso.LevelOffice {
			p, _ := u.At(su.Parent, asOf)
			scopeAuth = p.Level
		}
	}
	if level == "" {
		level = scopeLevel
	}
	// The rows of the level, and the wards directly under a province
	// standing for districts.
	rowUnits := u.Descendants(q.Unit, level, asOf)
	if level == hoso.LevelDistrict && (q.Unit == "" || scopeLevel == hoso.LevelProvince) {
		for _, w := range u.Descendants(q.Unit, hoso.LevelWard, asOf) {
			if p, _ := u.At(w.Parent, asOf); p.Level == hoso.LevelProvince {
				rowUnits = append(rowUnits, w)
			}
		}
	}
	places := map[string]naivePlace{}
	place := func(code string) naivePlace {
		if p, ok := places[code]; ok {
			return p
		}
		var p naivePlace
		eff, assigned, ok := naiveEffective(u, code, asOf)
		chain := map[hoso.Level]string{}
		var auth hoso.Level
		for x, found := u.At(eff, asOf); ok && found; x, found = u.At(x.Parent, asOf) {
			chain[x.Level] = x.Code
			if auth == "" && x.Level != hoso.LevelOffice {
				auth = x.Level
			}
			if x.Parent == "" {
				break
			}
		}
		if ok && auth != "" && (q.Unit == "" || chain[scopeLevel] == q.Unit) {
			p = naivePlace{ok: true, auth: auth, unassigned: !assigned}
			switch {
			case chain[level] != "":
				p.row = chain[level]
			case level == hoso.LevelDistrict && chain[hoso.LevelWard] != "":
				p.row = chain[hoso.LevelWard]
			default:
				p.row, p.own = chain[auth], true
			}
		}
		places[code] = p
		return p
	}
	byDossier := map[string][]*hoso.Event{}
	var codes []string
	for _, e := range events {
		if byDossier[e.Dossier] == nil {
			codes = append(codes, e.Dossier)
		}
		byDossier[e.Dossier] = append(byDossier[e.Dossier], e)
	}
	byProc := q.By == projections.ByProcedure
	acc := map[string]*hoso.ReportRow{}
	lacc := map[hoso.Level]*hoso.ReportRow{}
	for _, l := range naiveLevels {
		lacc[l] = &hoso.ReportRow{}
	}
	row := func(code, proc string) *hoso.ReportRow {
		p := place(code)
		if !p.ok {
			return nil
		}
		k := p.row
		if byProc {
			k = proc
		}
		if acc[k] == nil {
			acc[k] = &hoso.ReportRow{}
		}
		return acc[k]
	}
	// count calls fn on the code's row and level entry, when it has them.
	count := func(code, proc string, fn func(r *hoso.ReportRow)) {
		if r := row(code, proc); r != nil {
			fn(r)
			fn(lacc[place(code).auth])
		}
	}
	intake := func(code string, r *hoso.ReportRow) {
		if place(code).unassigned {
			r.Unassigned++
		}
	}
	for _, code := range codes {
		// Overdue markers count for nothing in a report (a dossier is overdue
		// by its due alone), and they are the one event dated out of the
		// dossier's time order (at the due): leave them out.
		desk := slices.DeleteFunc(slices.Clone(byDossier[code]), func(e *hoso.Event) bool { return e.Type == hoso.EventOverdue })
		var d hoso.Dossier
		for _, e := range desk {
			if !e.At.Before(from) {
				break
			}
			mustApply(t, &d, e)
		}
		if d.State.Open() {
			count(d.Owner, d.Procedure, func(r *hoso.ReportRow) { r.CarriedOver++; intake(d.Owner, r) })
		}
		d = hoso.Dossier{}
		for _, e := range desk {
			if !e.At.Before(end) {
				break
			}
			prev := d
			mustApply(t, &d, e)
			if e.At.Before(from) {
				continue
			}
			switch e.Type {
			case hoso.EventReceived:
				count(e.Unit, d.Procedure, func(r *hoso.ReportRow) {
					r.Received++
					intake(e.Unit, r)
					switch e.Channel {
					case hoso.ChannelOnline:
						r.ReceivedOnline++
					case hoso.ChannelDirect:
						r.ReceivedDirect++
					case hoso.ChannelPostal:
						r.ReceivedPostal++
					}
				})
			case hoso.EventTransferred:
				pf, pt := place(prev.Owner), place(d.Owner)
				// The rows count a transfer between two rows (by unit) or
				// across the border of the report's units (by procedure);
				// a level entry also counts one from one level to another.
				rowsCount := !pf.ok || !pt.ok || !byProc && pf.row != pt.row
				if rf := row(prev.Owner, d.Procedure); rf != nil {
					if rowsCount {
						rf.TransferredOut++
					}
					if rowsCount || pf.auth != pt.auth {
						lacc[pf.auth].TransferredOut++
					}
				}
				if rt := row(d.Owner, d.Procedure); rt != nil {
					if rowsCount {
						rt.TransferredIn++
						intake(d.Owner, rt)
					}
					if rowsCount || pf.auth != pt.auth {
						lacc[pt.auth].TransferredIn++
						intake(d.Owner, lacc[pt.auth])
					}
				}
			case hoso.EventResolved:
				count(prev.Owner, d.Procedure, func(r *hoso.ReportRow) {
					r.Resolved++
					switch hoso.ClassifyResolution(e.At, prev.Due) {
					case hoso.ClassEarly:
						r.ResolvedEarly++
					case hoso.ClassOnTime:
						r.ResolvedOnTime++
					default:
						r.ResolvedLate++
					}
				})
			case hoso.EventWithdrawn:
				count(prev.Owner, d.Procedure, func(r *hoso.ReportRow) { r.Withdrawn++ })
			}
		}
		if d.State.Open() {
			count(d.Owner, d.Procedure, func(r *hoso.ReportRow) {
				r.Pending++
				switch {
				case d.State == hoso.StateAwaitingSupplement:
					r.PendingPaused++
				case d.Due.Before(end):
					r.PendingOverdue++
				default:
					r.PendingInDeadline++
				}
			})
		}
	}
	if byProc {
		var procs []string
		for p, r := range acc {
			if *r != (hoso.ReportRow{}) {
				procs = append(procs, p)
			}
		}
		sort.Strings(procs)
		for _, p := range procs {
			r := *acc[p]
			r.Procedure, r.Name = p, p
			rows = append(rows, r)
		}
	} else {
		// Own rows with anything to count, by level then code, then the
		// units of the level by code.
		var own []hoso.ReportRow
		for code, r := range acc {
			x, _ := u.At(code, asOf)
			if slices.ContainsFunc(rowUnits, func(y hoso.Unit) bool { return y.Code == code }) || *r == (hoso.ReportRow{}) {
				continue
			}
			r := *r
			r.Unit, r.Level, r.Own = code, x.Level, true
			r.Name = x.Name + " (cấp " + strings.ToLower(x.Kind) + ")"
			if x.Kind == "Thành phố Trung ương" {
				r.Name = x.Name + " (cấp thành phố)"
			}
			own = append(own, r)
		}
		sort.Slice(own, func(i, j int) bool {
			if a, b := naiveLevelRank(own[i].Level), naiveLevelRank(own[j].Level); a != b {
				return a < b
			}
			return own[i].Unit < own[j].Unit
		})
		rows = own
		slices.SortFunc(rowUnits, func(a, b hoso.Unit) int { return strings.Compare(a.Code, b.Code) })
		for _, x := range rowUnits {
			r := hoso.ReportRow{}
			if acc[x.Code] != nil {
				r = *acc[x.Code]
			}
			r.Unit, r.Name, r.Level = x.Code, x.Name, x.Level
			rows = append(rows, r)
		}
	}
	total.Name = "Tổng cộng"
	for i := range rows {
		naiveRates(&rows[i])
		naiveAdd(&total, &rows[i])
	}
	naiveRates(&total)
	names := map[hoso.Level]string{hoso.LevelProvince: "Cấp tỉnh", hoso.LevelDistrict: "Cấp huyện", hoso.LevelWard: "Cấp xã"}
	levels = []hoso.ReportRow{}
	for _, l := range naiveLevels[naiveLevelRank(scopeAuth):] {
		r := *lacc[l]
		if l != scopeAuth && r == (hoso.ReportRow{}) && len(u.Descendants(q.Unit, l, asOf)) == 0 {
			continue
		}
		r.Name, r.Level = names[l], l
		naiveRates(&r)
		levels = append(levels, r)
	}
	return rows, total, levels
}

func naiveAdd(total, r *hoso.ReportRow) {
	total.CarriedOver += r.CarriedOver
	total.Received += r.Received
	total.ReceivedOnline += r.ReceivedOnline
	total.ReceivedDirect += r.ReceivedDirect
	total.ReceivedPostal += r.ReceivedPostal
	total.TransferredIn += r.TransferredIn
	total.TransferredOut += r.TransferredOut
	total.Resolved += r.Resolved
	total.ResolvedEarly += r.ResolvedEarly
	total.ResolvedOnTime += r.ResolvedOnTime
	total.ResolvedLate += r.ResolvedLate
	total.Withdrawn += r.Withdrawn
	total.Pending += r.Pending
	total.PendingInDeadline += r.PendingInDeadline
	total.PendingOverdue += r.PendingOverdue
	total.PendingPaused += r.PendingPaused
	total.Unassigned += r.Unassigned
}

func naiveRates(r *hoso.ReportRow) {
	if r.Resolved > 0 {
		v := float64(r.ResolvedEarly+r.ResolvedOnTime) / float64(r.Resolved)
		r.OnTimeRate = &v
	}
	if r.Resolved+r.Pending > 0 {
		v := float64(r.Resolved) / float64(r.Resolved+r.Pending)
		r.ResolutionRate = &v
	}
}

func mustApply(t rapid.TB, d *hoso.Dossier, e *hoso.Event) {
	t.Helper()
	if err := d.Apply(e); err != nil {
		t.Fatalf("naive fold: %v", err)
	}
}

// checkReport compares the projection's report with the naive one and
// checks the balance of every row and the total.
func checkReport(t rapid.TB, db *projections.DB, events []*hoso.Event, q projections.ReportQuery) *projections.Report {
	t.Helper()
	u, _ := registry(t)
	rep, err := db.Report(context.Background(), u, q)
	if err != nil {
		t.Fatalf("report %+v: %v", q, err)
	}
	rows, total, levels := naiveReport(t, events, q)
	if len(rows) != len(rep.Rows) {
		t.Fatalf("report %+v: %d rows, naive %d", q, len(rep.Rows), len(rows))
	}
	for i := range rows {
		if !sameRow(rows[i], rep.Rows[i]) {
			t.Fatalf("report %+v row %d:\n got %s\nwant %s", q, i, fmtRow(rep.Rows[i]), fmtRow(rows[i]))
		}
		if !rep.Rows[i].Balanced() {
			t.Fatalf("report %+v row %d does not balance: %s", q, i, fmtRow(rep.Rows[i]))
		}
	}
	if !sameRow(total, rep.Total) {
		t.Fatalf("report %+v total:\n got %s\nwant %s", q, fmtRow(rep.Total), fmtRow(total))
	}
	if !rep.Total.Balanced() {
		t.Fatalf("report %+v total does not balance: %s", q, fmtRow(rep.Total))
	}
	if len(levels) != len(rep.Levels) {
		t.Fatalf("report %+v: %d levels, naive %d", q, len(rep.Levels), len(levels))
	}
	for i := range levels {
		if !sameRow(levels[i], rep.Levels[i]) {
			t.Fatalf("report %+v level %d:\n got %s\nwant %s", q, i, fmtRow(rep.Levels[i]), fmtRow(levels[i]))
		}
		if !rep.Levels[i].Balanced() {
			t.Fatalf("report %+v level %s does not balance: %s", q, rep.Levels[i].Level, fmtRow(rep.Levels[i]))
		}
	}
	return rep
}

func sameRow(a, b hoso.ReportRow) bool {
	eq := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	if !eq(a.OnTimeRate, b.OnTimeRate) || !eq(a.ResolutionRate, b.ResolutionRate) {
		return false
	}
	a.OnTimeRate, a.ResolutionRate, b.OnTimeRate, b.ResolutionRate = nil, nil, nil, nil
	return a == b
}

func fmtRow(r hoso.ReportRow) string {
	rate := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprintf("%.4f", *p)
	}
	return fmt.Sprintf("%s%s %q %s own=%v unassigned=%d carried=%d recv=%d(on%d di%d po%d) in=%d out=%d res=%d(e%d o%d l%d) wd=%d pend=%d(in%d over%d pa%d) rates=%s/%s",
		r.Unit, r.Procedure, r.Name, r.Level, r.Own, r.Unassigned, r.CarriedOver, r.Received, r.ReceivedOnline, r.ReceivedDirect, r.ReceivedPostal,
		r.TransferredIn, r.TransferredOut, r.Resolved, r.ResolvedEarly, r.ResolvedOnTime, r.ResolvedLate,
		r.Withdrawn, r.Pending, r.PendingInDeadline, r.PendingOverdue, r.PendingPaused, rate(r.OnTimeRate), rate(r.ResolutionRate))
}
