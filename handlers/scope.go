package handlers

import (
	"context"
	"time"

	"github.com/hoso-ledger/hoso"
)

// The read services as a principal sees them: each call checks that what
// it asks lies in the principal's scope, and a unit left out is the scope
// unit rather than the whole country. The API and the dashboard both read
// through these, so neither can show what the other would refuse.
var (
	_ hoso.ReportService  = scopedReports{}
	_ hoso.DossierLister  = scopedLister{}
	_ hoso.UnitService    = scopedUnits{}
	_ hoso.DossierService = scopedDossiers{}
)

// scoper makes the scoped services of a registry and a clock.
type scoper struct {
	units   *hoso.Units
	now     hoso.Clock
	history hoso.DossierService
}

func (s *Server) scoped() scoper {
	return scoper{units: s.Units, now: s.now, history: s.Dossiers}
}

func (sc scoper) reports(next hoso.ReportService) hoso.ReportService {
	return scopedReports{next: next, units: sc.units, now: sc.now}
}

func (sc scoper) lister(next hoso.DossierLister) hoso.DossierLister {
	return scopedLister{next: next, units: sc.units, now: sc.now}
}

func (sc scoper) unitService(next hoso.UnitService) hoso.UnitService {
	return scopedUnits{next: next, units: sc.units, now: sc.now}
}

// dossiers is the server's own DossierService, scoped.
func (sc scoper) dossiers() hoso.DossierService {
	return scopedDossiers{next: sc.history, units: sc.units}
}

// checkScope is p.CheckScope, refusing a scoped principal when there is no
// registry to check it against rather than letting it through.
func checkScope(p *hoso.Principal, units *hoso.Units, field, unit string, t time.Time) error {
	if units == nil && !p.National() {
		return hoso.Errorf(hoso.EINTERNAL, "no units registry to check %s's scope against", p)
	}
	return p.CheckScope(units, field, unit, t)
}

type scopedReports struct {
	next  hoso.ReportService
	units *hoso.Units
	now   hoso.Clock
}

// Report checks the scope unit as the registry stands on the period's last
// day (today when the period is left open).
func (s scopedReports) Report(ctx context.Context, q hoso.ReportQuery) (hoso.ReportTable, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if q.Unit == "" {
		q.Unit = p.Unit
	}
	at := s.now()
	if q.To != "" {
		if to, err := time.ParseInLocation(time.DateOnly, q.To, hoso.VietnamZone); err == nil {
			at = to.Add(24*time.Hour - time.Nanosecond)
		}
	}
	if err := checkScope(p, s.units, "unit", q.Unit, at); err != nil {
		return nil, err
	}
	return s.next.Report(ctx, q)
}

type scopedLister struct {
	next  hoso.DossierLister
	units *hoso.Units
	now   hoso.Clock
}

func (s scopedLister) ListDossiers(ctx context.Context, f hoso.DossierFilter) (*hoso.DossierPage, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if f.Unit == "" {
		f.Unit = p.Unit
	}
	if err := checkScope(p, s.units, "unit", f.Unit, s.now()); err != nil {
		return nil, err
	}
	return s.next.ListDossiers(ctx, f)
}

type scopedUnits struct {
	next  hoso.UnitService
	units *hoso.Units
	now   hoso.Clock
}

func (s scopedUnits) FindUnit(ctx context.Context, code string) (*hoso.UnitView, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkScope(p, s.units, "code", code, s.now()); err != nil {
		return nil, err
	}
	return s.next.FindUnit(ctx, code)
}

type scopedDossiers struct {
	next  hoso.DossierService
	units *hoso.Units
}

// FindDossier shows a dossier to a principal whose scope held it at some
// point: a unit of the scope received it, sent it or was sent it, each on
// the date it did so. A dossier that only passed elsewhere is refused, not
// hidden: its code is no secret (its holder has it on a receipt).
func (s scopedDossiers) FindDossier(ctx context.Context, code string) (*hoso.DossierView, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	view, err := s.next.FindDossier(ctx, code)
	if err != nil {
		return nil, err
	}
	if units := s.units; units == nil && !p.National() || units != nil && !dossierInScope(p, units, view) {
		return nil, hoso.ForbiddenErrorf("dossier", "%s never passed through %s's scope (unit %s)", code, p.Name, p.Unit)
	}
	return view, nil
}

func dossierInScope(p *hoso.Principal, units *hoso.Units, view *hoso.DossierView) bool {
	for _, e := range view.Events {
		if p.Covers(units, e.Unit, e.At) || (e.ToUnit != "" && p.Covers(units, e.ToUnit, e.At)) {
			return true
		}
	}
	return p.National()
}
