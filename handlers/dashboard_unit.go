package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hoso-ledger/hoso"
)

// DefaultDashboardPageSize is the length of each dossier list of a unit's page.
const DefaultDashboardPageSize = 20

// dossierList is one paged list of a unit's page.
type dossierList struct {
	Title, Empty string
	Items        []dossierItem
	Next         string // the next page's URL, "" after the last
	More         bool   // this is not the first page
	First        string // the first page's URL
}

// dossierItem is one dossier of a list.
type dossierItem struct {
	Code, URL, Procedure, OwnerName string
	Received, Due                   time.Time
}

// unitPage is what a unit's page shows.
type unitPage struct {
	Title    string
	Unit     hoso.UnitBacklog
	Children []hoso.UnitBacklog
	AsOfSeq  uint64
	Crumbs   []link
	Report   string // the report of the unit's subtree, this year so far
	Overdue  dossierList
	DueSoon  dossierList
	Gone     *notice // set for a unit that no longer exists
}

// notice is a message with where to go next.
type notice struct {
	Msg   string
	Links []link
}

// handleUnit serves GET /units/{code}: the unit's backlog by deadline state
// now, its children's, and its overdue and due-soon dossiers, each list
// paged by its own cursor (overdue_cursor, due_soon_cursor).
func (d *dashboard) handleUnit(w http.ResponseWriter, r *http.Request) {
	p, err := queryParams(r, "overdue_cursor", "due_soon_cursor")
	if err != nil {
		d.fail(w, r, err)
		return
	}
	code := r.PathValue("code")
	view, err := d.Units.FindUnit(r.Context(), code)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := d.now()
	page := unitPage{
		Title: view.Name, Unit: view.UnitBacklog, Children: view.Children, AsOfSeq: view.AsOfSeq,
		Crumbs: d.unitCrumbs(hoso.PrincipalFromContext(r.Context()), code, now),
		Report: reportURL(code, "", day(yearStart(now.In(hoso.VietnamZone))), day(now)),
		Gone:   d.goneNotice(view.Unit, now),
	}
	lists := []struct {
		list        *dossierList
		state, name string
		title       string
		empty       string
	}{
		{&page.Overdue, "overdue", "overdue_cursor", "Hồ sơ quá hạn", "Không có hồ sơ nào quá hạn."},
		{&page.DueSoon, "due_soon", "due_soon_cursor", "Hồ sơ sắp đến hạn", "Không có hồ sơ nào sắp đến hạn."},
	}
	for _, l := range lists {
		pg, err := d.Lister.ListDossiers(r.Context(), hoso.DossierFilter{Unit: code, State: l.state, Cursor: p[l.name], Limit: d.pageSize()})
		if err != nil {
			d.fail(w, r, renameField(err, "cursor", l.name))
			return
		}
		*l.list = dossierList{Title: l.title, Empty: l.empty, More: p[l.name] != ""}
		for _, ds := range pg.Dossiers {
			l.list.Items = append(l.list.Items, dossierItem{
				Code: ds.Code, URL: "/dossiers/" + url.PathEscape(ds.Code), Procedure: ds.Procedure,
				OwnerName: d.unitName(ds.Owner, ds.LastAt), Received: ds.ReceivedAt, Due: ds.Due,
			})
		}
		// Each list's link keeps the other list where it is.
		other := lists[0].name
		if other == l.name {
			other = lists[1].name
		}
		base := "/units/" + url.PathEscape(code)
		l.list.First = pageURL(base, other, p[other])
		if pg.NextCursor != "" {
			l.list.Next = pageURL(base, other, p[other], l.name, pg.NextCursor)
		}
	}
	d.render(w, r, http.StatusOK, "unit", page)
}

func (d *dashboard) pageSize() int {
	if d.PageSize <= 0 {
		return DefaultDashboardPageSize
	}
	return d.PageSize
}

// renameField gives an invalid-field error the name of the parameter the
// page took it from.
func renameField(err error, from, to string) error {
	var he *hoso.Error
	if errors.As(err, &he) && he.Field == from {
		msg := he.Message
		if len(msg) > len(from)+2 && msg[:len(from)+2] == from+": " {
			msg = msg[len(from)+2:]
		}
		return hoso.FieldErrorf(to, "%s", msg)
	}
	return err
}

// unitName is the unit's name at t, else its last name (a unit merged away
// by a reform), else its code.
//
// Codes are reused (the 2025 reform gave 00118, Phường Ngọc Thụy, to the
// new Phường Bồ Đề), so a dossier's units are named as they stood when the
// dossier was last touched, not as the code reads today.
func (d *dashboard) unitName(code string, t time.Time) string {
	if u, ok := d.Registry.At(code, t); ok {
		return u.Name
	}
	if h := d.Registry.History(code); len(h) > 0 {
		return h[len(h)-1].Name
	}
	return code
}

// goneNotice tells that u (as it last stood) no longer exists, with links
// to its parent's and its successors' pages; nil for a unit that exists.
// Its dossiers still open stay with it until they are transferred.
func (d *dashboard) goneNotice(u hoso.Unit, now time.Time) *notice {
	if u.ValidTo == "" || mustParseDay(u.ValidTo).After(now) {
		return nil
	}
	n := &notice{Msg: fmt.Sprintf("%s (mã %s) không còn tồn tại từ ngày %s. Hồ sơ của đơn vị còn đang giải quyết vẫn được theo dõi tại đây; báo cáo các kỳ trước vẫn có số liệu của đơn vị này.",
		u.Name, u.Code, formatDate(u.ValidTo))}
	if u.Parent != "" {
		if p, ok := d.Registry.At(u.Parent, now); ok {
			n.Links = append(n.Links, link{Label: "Đơn vị cấp trên: " + p.Name, URL: "/units/" + url.PathEscape(p.Code)})
		} else if prov := d.Registry.Province(u.Parent, mustParseDay(u.ValidFrom)); prov != "" {
			if p, ok := d.Registry.At(prov, now); ok {
				n.Links = append(n.Links, link{Label: "Tỉnh, thành phố: " + p.Name, URL: "/units/" + url.PathEscape(p.Code)})
			}
		}
	}
	for _, s := range d.Registry.Successors(u.Code) {
		if p, ok := d.Registry.At(s.Code, now); ok {
			n.Links = append(n.Links, link{Label: "Đơn vị kế thừa: " + p.Name + " (" + s.Note + ")", URL: "/units/" + url.PathEscape(p.Code)})
		}
	}
	return n
}

// mustParseDay reads a registry date; an empty or bad one is the zero time.
func mustParseDay(s string) time.Time {
	t, _ := time.ParseInLocation(time.DateOnly, s, hoso.VietnamZone)
	return t
}

// unitCrumbs are the pages of the unit's ancestors, from its province down:
// those the principal may read.
func (d *dashboard) unitCrumbs(p *hoso.Principal, code string, now time.Time) []link {
	anc := d.Registry.Ancestors(code, now)
	crumbs := make([]link, 0, len(anc)+1)
	for i := len(anc) - 1; i >= 0; i-- {
		if p == nil || p.Covers(d.Registry, anc[i].Code, now) {
			crumbs = append(crumbs, link{Label: anc[i].Name, URL: "/units/" + url.PathEscape(anc[i].Code)})
		}
	}
	return append(crumbs, link{Label: d.unitName(code, now), URL: "/units/" + url.PathEscape(code), Current: true})
}

// dossierPage is what a dossier's page shows.
type dossierPage struct {
	Title          string
	Dossier        *hoso.Dossier
	Classification hoso.Classification
	Receiving      string
	Owner          string
	OwnerURL       string
	Events         []eventItem
}

// eventItem is one event of a dossier's history.
type eventItem struct {
	*hoso.Event
	UnitName, ToUnitName string
}

// handleDossier serves GET /dossiers/{code}: the dossier's state, owner,
// due and classification, and its events.
func (d *dashboard) handleDossier(w http.ResponseWriter, r *http.Request) {
	if _, err := queryParams(r); err != nil {
		d.fail(w, r, err)
		return
	}
	view, err := d.Dossiers.FindDossier(r.Context(), r.PathValue("code"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := d.now()
	page := dossierPage{
		Title: "Hồ sơ " + view.Code, Dossier: view.Dossier, Classification: view.Classification,
		Receiving: d.unitName(view.ReceivingUnit, view.ReceivedAt), Owner: d.unitName(view.Owner, view.LastAt),
	}
	if _, ok := d.Registry.At(view.Owner, now); ok {
		page.OwnerURL = "/units/" + url.PathEscape(view.Owner)
	}
	for _, e := range view.Events {
		item := eventItem{Event: e, UnitName: d.unitName(e.Unit, e.At)}
		if e.ToUnit != "" {
			item.ToUnitName = d.unitName(e.ToUnit, e.At)
		}
		page.Events = append(page.Events, item)
	}
	d.render(w, r, http.StatusOK, "dossier", page)
}
