package projections

import (
	"context"
	"time"

	"github.com/hoso-ledger/hoso"
)

// DefaultDueSoon is how much working time before its due a processing
// dossier counts as due soon: one working day (8 working hours).
const DefaultDueSoon = 8 * time.Hour

// Reads answers the read API (reports, listings, units) from the read
// model. Now is the clock of the deadline states; DueSoon the working time
// before the due from which a dossier is due soon, counted with the
// calendar of the unit's province (national rules for the whole country).
type Reads struct {
	DB       *DB
	Units    *hoso.Units
	Calendar *hoso.Calendar
	Now      hoso.Clock
	DueSoon  time.Duration
}

var (
	_ hoso.ReportService = (*Reads)(nil)
	_ hoso.DossierLister = (*Reads)(nil)
	_ hoso.UnitService   = (*Reads)(nil)
	_ hoso.ReportTable   = (*Report)(nil)
)

func (s *Reads) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// dueSoonUntil is the end of the due-soon window that starts at now for
// the dossiers of unit ("" for the whole country).
func (s *Reads) dueSoonUntil(unit string, now time.Time) time.Time {
	d := s.DueSoon
	if d <= 0 {
		d = DefaultDueSoon
	}
	province := ""
	if unit != "" {
		province = s.Units.Province(unit, now)
	}
	return s.Calendar.AddWorkingTime(province, now, d)
}

// Report computes a report; see DB.Report.
func (s *Reads) Report(ctx context.Context, q hoso.ReportQuery) (hoso.ReportTable, error) {
	rep, err := s.DB.Report(ctx, s.Units, q)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// ListDossiers returns a page of dossiers of the unit's subtree as the
// registry stands now, in order of due then code.
func (s *Reads) ListDossiers(ctx context.Context, f hoso.DossierFilter) (*hoso.DossierPage, error) {
	now := s.now()
	seq, err := s.DB.AppliedSeq(ctx)
	if err != nil {
		return nil, err
	}
	page := &hoso.DossierPage{Dossiers: []hoso.DossierSummary{}, AsOfSeq: seq}
	q := ListQuery{State: f.State, DueBefore: f.DueBefore, Cursor: f.Cursor, Limit: f.Limit}
	if f.Unit != "" {
		_, asOf, ok := s.lastStood(f.Unit, now)
		if !ok {
			return nil, hoso.FieldErrorf("unit", "unknown unit %q", f.Unit)
		}
		if q.Units, err = s.DB.SeenUnits(ctx, s.Units, f.Unit, asOf); err != nil {
			return nil, err
		}
		if len(q.Units) == 0 {
			q.Units = []string{f.Unit} // owns nothing: an empty page, parameters still checked
		}
	}
	items, next, err := s.DB.ListDossiers(ctx, q, now, s.dueSoonUntil(f.Unit, now))
	if err != nil {
		return nil, err
	}
	for _, d := range items {
		page.Dossiers = append(page.Dossiers, hoso.DossierSummary{Dossier: d, Classification: d.Classify(now)})
	}
	page.NextCursor = next
	return page, nil
}

// lastStood is the unit with code as it stands now or, if it no longer
// exists, as it last stood, with an instant (noon of its last day) at which
// the registry shows it so: its subtree is taken as of then.
func (s *Reads) lastStood(code string, now time.Time) (hoso.Unit, time.Time, bool) {
	if u, ok := s.Units.At(code, now); ok {
		return u, now, true
	}
	u, ok := newResolver(s.Units, hoso.LocalDate(now)).version(code)
	if !ok || u.ValidTo == "" {
		return hoso.Unit{}, time.Time{}, false
	}
	end, err := time.ParseInLocation(time.DateOnly, u.ValidTo, hoso.VietnamZone)
	if err != nil {
		return hoso.Unit{}, time.Time{}, false
	}
	return u, end.Add(-12 * time.Hour), true
}

// FindUnit returns the unit as it stands now with the backlog of its
// subtree and of each child's subtree. A dossier counts for the unit that
// owns it; an owner code that no longer exists counts where its last
// version stood. A unit that no longer exists (a district dissolved by the
// 2025 reform, say) is answered as it last stood, with its children of
// then, since its dossiers may still be open.
func (s *Reads) FindUnit(ctx context.Context, code string) (*hoso.UnitView, error) {
	now := s.now()
	u, asOf, ok := s.lastStood(code, now)
	if !ok {
		return nil, hoso.Errorf(hoso.ENOTFOUND, "unit %q not found", code)
	}
	seq, err := s.DB.AppliedSeq(ctx)
	if err != nil {
		return nil, err
	}
	view := &hoso.UnitView{UnitBacklog: hoso.UnitBacklog{Unit: u}, Children: []hoso.UnitBacklog{}, AsOfSeq: seq}
	children := s.Units.Children(code, asOf)
	childIndex := make(map[string]int, len(children))
	for i, c := range children {
		childIndex[c.Code] = i
		view.Children = append(view.Children, hoso.UnitBacklog{Unit: c})
	}
	codes, err := s.DB.SeenUnits(ctx, s.Units, code, asOf)
	if err != nil {
		return nil, err
	}
	rows, err := s.DB.UnitBacklog(ctx, codes, now, s.dueSoonUntil(code, now))
	if err != nil {
		return nil, err
	}
	reg := newResolver(s.Units, hoso.LocalDate(asOf))
	for _, r := range rows {
		b := hoso.Backlog{Open: r.Open(), InDeadline: r.InDeadline, DueSoon: r.DueSoon, Overdue: r.Overdue, Paused: r.Paused}
		addBacklog(&view.Backlog, b)
		if i, ok := childOf(reg, r.Unit, code, childIndex); ok {
			addBacklog(&view.Children[i].Backlog, b)
		}
	}
	return view, nil
}

// childOf finds which child of root holds code, following parents as the
// registry stands on the resolver's day.
func childOf(reg *resolver, code, root string, childIndex map[string]int) (int, bool) {
	u, ok := reg.version(code)
	for depth := 0; ok && depth < 16; depth++ {
		if u.Parent == root {
			i, ok := childIndex[u.Code]
			return i, ok
		}
		if u.Parent == "" {
			return 0, false
		}
		u, ok = reg.version(u.Parent)
	}
	return 0, false
}

func addBacklog(dst *hoso.Backlog, b hoso.Backlog) {
	dst.Open += b.Open
	dst.InDeadline += b.InDeadline
	dst.DueSoon += b.DueSoon
	dst.Overdue += b.Overdue
	dst.Paused += b.Paused
}
