package handlers

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/hoso-ledger/hoso"
)

// historyStart is the first day the busiest province is counted from: before
// the unit registry's first version, so it covers every stored dossier.
const historyStart = "2000-01-01"

// link is a labelled dashboard URL.
type link struct {
	Label, URL string
	Current    bool
}

// option is one choice of a form's select.
type option struct {
	Value, Label string
	Selected     bool
}

// reportPage is what the report page shows.
type reportPage struct {
	Title     string
	Scope     string // the unit's name, or the whole country
	Unit      string // "" is the whole country
	Level     hoso.Level
	LevelName string
	From, To  string
	Default   bool // the unit was chosen by the dashboard, not asked for
	Units     []option
	Levels    []option
	Quick     []link
	Crumbs    []link
	Rows      []hoso.ReportRow
	Total     hoso.ReportRow
	// Split is the total by authority level; HasOwn: some rows are
	// the own desks of units above the level.
	Split     []hoso.ReportRow
	HasOwn    bool
	AsOfSeq   uint64
	CSV, XLSX string
	UnitPage  string // the scope's drill-down, "" for the whole country
	// NoRows: the scope has no unit of the level (own rows may still
	// hold dossiers); Quiet: no dossier in the period. Latest links to the
	// last year that had some.
	NoRows, Quiet bool
	Latest        *link
}

// levelNames are the levels in Vietnamese, as the forms write them.
var levelNames = map[hoso.Level]string{
	hoso.LevelProvince: "Tỉnh, thành phố",
	hoso.LevelDistrict: "Quận, huyện",
	hoso.LevelWard:     "Phường, xã",
	hoso.LevelOffice:   "Cơ quan, đơn vị",
}

// handleReport serves GET /: the report of a unit's subtree for a period.
// Without unit= it picks the province with the most dossiers (the whole
// country when there is none); unit= with no value is the whole country.
func (d *dashboard) handleReport(w http.ResponseWriter, r *http.Request) {
	p, err := queryParams(r, "unit", "level", "from", "to")
	if err != nil {
		d.fail(w, r, err)
		return
	}
	today := d.now().In(hoso.VietnamZone)
	from, to := yearStart(today), today
	if v, ok := p["from"]; ok {
		if from, err = parseDay("from", v); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	if v, ok := p["to"]; ok {
		if to, err = parseDay("to", v); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	if to.Before(from) {
		d.fail(w, r, hoso.FieldErrorf("to", "%s is before from %s", day(to), day(from)))
		return
	}
	// The registry as it stood on the period's last day names the units.
	asOf := to.Add(24*time.Hour - time.Nanosecond)
	unit, chosen := p["unit"], false
	if pr := hoso.PrincipalFromContext(r.Context()); !hasUnit(p) && pr != nil && !pr.National() {
		// A scoped principal starts at its own unit.
		unit, chosen = pr.Unit, true
	} else if !hasUnit(p) {
		if unit, err = d.busiestProvince(r, day(today)); err != nil {
			d.fail(w, r, err)
			return
		}
		chosen = true
	}
	if unit != "" {
		if _, ok := d.Registry.At(unit, asOf); !ok {
			d.fail(w, r, hoso.FieldErrorf("unit", "unknown unit %q on %s", unit, day(to)))
			return
		}
	}
	level := hoso.Level(p["level"])
	if level == "" {
		level = d.childLevel(unit, asOf)
	} else if _, err := hoso.ParseLevel(string(level)); err != nil {
		d.fail(w, r, err)
		return
	}
	rep, err := d.report(r, hoso.ReportQuery{Unit: unit, Level: level, From: day(from), To: day(to)})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page := reportPage{
		Title: "Báo cáo " + rep.Name, Scope: rep.Name, Unit: unit, Level: rep.Level,
		LevelName: levelNames[rep.Level], From: rep.From, To: rep.To, Default: chosen,
		Rows: rep.Rows, Total: rep.Total, Split: rep.Levels, AsOfSeq: rep.AsOfSeq,
		HasOwn: slices.ContainsFunc(rep.Rows, func(r hoso.ReportRow) bool { return r.Own }),
		Units:  d.unitOptions(hoso.PrincipalFromContext(r.Context()), unit, asOf),
		Levels: levelOptions(rep.Level),
		Quick:  quickPeriods(unit, p["level"], today, rep.From, rep.To),
		Crumbs: d.reportCrumbs(hoso.PrincipalFromContext(r.Context()), unit, asOf, rep.From, rep.To),
		NoRows: !slices.ContainsFunc(rep.Rows, func(r hoso.ReportRow) bool { return !r.Own }),
	}
	export := url.Values{"level": {string(rep.Level)}, "from": {rep.From}, "to": {rep.To}}
	if unit != "" {
		export.Set("unit", unit)
		page.UnitPage = "/units/" + url.PathEscape(unit)
	}
	export.Set("format", "csv")
	page.CSV = "/v1/report?" + export.Encode()
	export.Set("format", "xlsx")
	page.XLSX = "/v1/report?" + export.Encode()
	if !page.NoRows && emptyRow(&rep.Total) {
		page.Quiet = true
		if page.Latest, err = d.latestYear(r, unit, p["level"], today); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	d.render(w, r, http.StatusOK, "report", page)
}

func hasUnit(p map[string]string) bool {
	_, ok := p["unit"]
	return ok
}

// busiestProvince is the province that received the most dossiers ever, or
// "" (the whole country) when none did.
func (d *dashboard) busiestProvince(r *http.Request, today string) (string, error) {
	rep, err := d.report(r, hoso.ReportQuery{Level: hoso.LevelProvince, From: historyStart, To: today})
	if err != nil {
		return "", err
	}
	best, most := "", int64(0)
	for _, row := range rep.Rows {
		if n := row.CarriedOver + row.Received; n > most {
			best, most = row.Unit, n
		}
	}
	return best, nil
}

// latestYear links to the last whole year, up to ten years back, in which
// the scope had dossiers, or nil.
func (d *dashboard) latestYear(r *http.Request, unit, level string, today time.Time) (*link, error) {
	for y := today.Year() - 1; y >= today.Year()-10; y-- {
		from, to := time.Date(y, 1, 1, 0, 0, 0, 0, hoso.VietnamZone), time.Date(y, 12, 31, 0, 0, 0, 0, hoso.VietnamZone)
		rep, err := d.report(r, hoso.ReportQuery{Unit: unit, From: day(from), To: day(to)})
		if err != nil {
			return nil, err
		}
		if !emptyRow(&rep.Total) {
			return &link{Label: "Năm " + from.Format("2006"), URL: reportURL(unit, level, day(from), day(to))}, nil
		}
	}
	return nil, nil
}

// childLevel is the level of the unit's children on asOf (provinces for
// the whole country), or its own level when it has none.
func (d *dashboard) childLevel(unit string, asOf time.Time) hoso.Level {
	if unit == "" {
		return hoso.LevelProvince
	}
	if children := d.Registry.Children(unit, asOf); len(children) > 0 {
		return children[0].Level
	}
	u, _ := d.Registry.At(unit, asOf)
	return u.Level
}

// unitOptions are the whole country and every province on asOf, plus the
// unit itself when it is below a province.
//
// A principal with a scope is offered its own unit and the units under it
// only: what it may read.
func (d *dashboard) unitOptions(p *hoso.Principal, unit string, asOf time.Time) []option {
	var opts []option
	var choices []hoso.Unit
	if p == nil || p.National() {
		opts = append(opts, option{Value: "", Label: "Toàn quốc", Selected: unit == ""})
		choices = d.Registry.Descendants("", hoso.LevelProvince, asOf)
	} else {
		if u, ok := d.Registry.At(p.Unit, asOf); ok {
			choices = append(choices, u)
		}
		choices = append(choices, d.Registry.Children(p.Unit, asOf)...)
	}
	found := unit == "" && (p == nil || p.National())
	for _, u := range choices {
		opts = append(opts, option{Value: u.Code, Label: u.Name + " (" + u.Code + ")", Selected: u.Code == unit})
		found = found || u.Code == unit
	}
	if !found {
		if u, ok := d.Registry.At(unit, asOf); ok {
			opts = append(opts, option{Value: u.Code, Label: u.Name + " (" + u.Code + ")", Selected: true})
		}
	}
	return opts
}

func levelOptions(current hoso.Level) []option {
	var opts []option
	for _, l := range []hoso.Level{hoso.LevelProvince, hoso.LevelDistrict, hoso.LevelWard, hoso.LevelOffice} {
		opts = append(opts, option{Value: string(l), Label: levelNames[l], Selected: l == current})
	}
	return opts
}

// reportCrumbs are the reports of the whole country and of each ancestor of
// unit, down to unit itself, for the same period: those the principal may
// read, from its scope unit down.
func (d *dashboard) reportCrumbs(p *hoso.Principal, unit string, asOf time.Time, from, to string) []link {
	national := p == nil || p.National()
	var crumbs []link
	if national {
		crumbs = append(crumbs, link{Label: "Toàn quốc", URL: reportURL("", "", from, to), Current: unit == ""})
	}
	if unit == "" {
		return crumbs
	}
	anc := d.Registry.Ancestors(unit, asOf)
	for i := len(anc) - 1; i >= 0; i-- {
		if national || p.Covers(d.Registry, anc[i].Code, asOf) {
			crumbs = append(crumbs, link{Label: anc[i].Name, URL: reportURL(anc[i].Code, "", from, to)})
		}
	}
	if u, ok := d.Registry.At(unit, asOf); ok {
		crumbs = append(crumbs, link{Label: u.Name, URL: reportURL(unit, "", from, to), Current: true})
	}
	return crumbs
}

// reportURL links to the report page; unit is always written, since its
// absence would mean the default unit rather than the whole country.
func reportURL(unit, level, from, to string) string {
	v := url.Values{"unit": {unit}, "from": {from}, "to": {to}}
	if level != "" {
		v.Set("level", level)
	}
	return "/?" + v.Encode()
}

// quickPeriods are the usual periods up to today: this month, last month,
// this quarter, this year so far and last year.
func quickPeriods(unit, level string, today time.Time, from, to string) []link {
	y, m, _ := today.Date()
	z := hoso.VietnamZone
	monthStart := time.Date(y, m, 1, 0, 0, 0, 0, z)
	quarterStart := time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, z)
	periods := []struct {
		label    string
		from, to time.Time
	}{
		{"Tháng này", monthStart, today},
		{"Tháng trước", monthStart.AddDate(0, -1, 0), monthStart.AddDate(0, 0, -1)},
		{"Quý này", quarterStart, today},
		{"Năm nay", yearStart(today), today},
		{"Năm trước", yearStart(today).AddDate(-1, 0, 0), yearStart(today).AddDate(0, 0, -1)},
	}
	links := make([]link, len(periods))
	for i, p := range periods {
		f, t := day(p.from), day(p.to)
		links[i] = link{Label: p.label, URL: reportURL(unit, level, f, t), Current: f == from && t == to}
	}
	return links
}

func yearStart(t time.Time) time.Time {
	return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, hoso.VietnamZone)
}

// parseDay reads a local date YYYY-MM-DD of parameter name.
func parseDay(name, v string) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, v, hoso.VietnamZone)
	if err != nil || t.Year() < 1900 || t.Year() > 9999 {
		return time.Time{}, hoso.FieldErrorf(name, "must be a date YYYY-MM-DD, got %q", v)
	}
	return t, nil
}

// day formats a local date as YYYY-MM-DD.
func day(t time.Time) string { return t.In(hoso.VietnamZone).Format(time.DateOnly) }
