package handlers

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hoso-ledger/hoso"
)

// dashboardFS holds the dashboard's templates and static files, so the
// binary serves its pages with nothing beside it.
//
//go:embed dashboard
var dashboardFS embed.FS

// Dashboard is the supervisors' web pages: the report of a unit's subtree
// for a period (GET /), a unit's backlog with its overdue and due-soon
// dossiers (GET /units/{code}) and one dossier's history
// (GET /dossiers/{code}). They read the same services as the JSON API, so a
// page shows what the API answers.
type Dashboard struct {
	Reports  hoso.ReportService
	Lister   hoso.DossierLister
	Units    hoso.UnitService
	Dossiers hoso.DossierService
	Registry *hoso.Units
	// Now is the clock of the default period; nil is time.Now.
	Now hoso.Clock
	// PageSize is the length of each dossier list on a unit's page; 0 is 20.
	PageSize int
}

// MountDashboard registers the dashboard's pages and its static files. Every
// service must be set.
func (s *Server) MountDashboard(d Dashboard) error {
	if d.Reports == nil || d.Lister == nil || d.Units == nil || d.Dossiers == nil || d.Registry == nil {
		return fmt.Errorf("dashboard: every service and the units registry are required")
	}
	pages, err := parsePages()
	if err != nil {
		return err
	}
	static, err := fs.Sub(dashboardFS, "dashboard/static")
	if err != nil {
		return err
	}
	// The pages read through the services scoped to the signed-in
	// principal, as the API does.
	now := d.Now
	if now == nil {
		now = time.Now
	}
	sc := scoper{units: d.Registry, now: now}
	d.Reports, d.Lister, d.Units = sc.reports(d.Reports), sc.lister(d.Lister), sc.unitService(d.Units)
	d.Dossiers = scopedDossiers{next: d.Dossiers, units: d.Registry}
	ds := &dashboard{Dashboard: d, server: s, pages: pages}
	s.Handle("GET /{$}", Readers, http.HandlerFunc(ds.handleReport))
	s.Handle("GET /units/{code}", Readers, http.HandlerFunc(ds.handleUnit))
	s.Handle("GET /dossiers/{code}", Readers, http.HandlerFunc(ds.handleDossier))
	// The style sheet is public: the sign-in page needs it before anyone is signed in.
	s.Handle("GET /static/", Public(), http.StripPrefix("/static/", http.FileServerFS(static)))
	ds.mountSignIn()
	return nil
}

// dashboard is a mounted Dashboard.
type dashboard struct {
	Dashboard
	server *Server
	pages  map[string]*template.Template
}

// pageNames are the dashboard's pages; each is base.html plus its own file.
var pageNames = []string{"report", "unit", "dossier", "error", "signin"}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("base.html").Funcs(templateFuncs).
			ParseFS(dashboardFS, "dashboard/base.html", "dashboard/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

func (d *dashboard) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// render executes a page into a buffer first, so a failing template becomes
// an error page instead of half an answer.
func (d *dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := d.pages[page].Execute(&buf, data); err != nil {
		d.server.logger().LogAttrs(r.Context(), slog.LevelError, "render dashboard page",
			slog.String("page", page), slog.String("path", r.URL.Path), slog.Any("err", err))
		if page == "error" {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		d.fail(w, r, hoso.Errorf(hoso.EINTERNAL, "internal error"))
		return
	}
	writeHTMLBody(w, status, buf.Bytes())
}

// writeHTMLBody answers body, a whole rendered page, with status.
func writeHTMLBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// The security headers (no scripts, no frames, nothing from elsewhere)
	// are the middleware's, on every answer: setSecurityHeaders.
	w.WriteHeader(status)
	_, _ = w.Write(body) // a failed write means the client left
}

// errorPage is what the error page shows.
type errorPage struct {
	Title  string
	Status int
	Field  string
	Msg    string
	Links  []link // where to go instead
}

// fail answers err as an HTML error page with the status the JSON API would
// give. Internal causes are logged, never shown.
func (d *dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := ErrorStatus(err)
	p := errorPage{Status: status, Msg: hoso.ErrorMessage(err)}
	var he *hoso.Error
	if errors.As(err, &he) {
		p.Field = he.Field
	}
	switch status {
	case http.StatusBadRequest:
		p.Title = "Tham số không hợp lệ"
	case http.StatusNotFound:
		p.Title = "Không tìm thấy"
	case http.StatusForbidden:
		p.Title = "Ngoài phạm vi được xem"
		p.Links = append(p.Links, link{URL: "/", Label: "Báo cáo của đơn vị bạn"}, link{URL: "/sign-in", Label: "Phiên đăng nhập"})
	default:
		p.Title = "Lỗi hệ thống"
		if status >= http.StatusInternalServerError {
			d.server.logger().LogAttrs(r.Context(), slog.LevelError, "dashboard request failed",
				slog.String("path", r.URL.Path), slog.Any("err", err))
		}
	}
	d.render(w, r, status, "error", p)
}

// emptyRow reports whether nothing happened to the row's dossiers in the
// period and none was open at either end.
func emptyRow(r *hoso.ReportRow) bool {
	return r.CarriedOver == 0 && r.Received == 0 && r.TransferredIn == 0 && r.Pending == 0 &&
		r.Resolved == 0 && r.Withdrawn == 0 && r.TransferredOut == 0
}

// report asks for a report: the same table the API answers.
func (d *dashboard) report(r *http.Request, q hoso.ReportQuery) (*hoso.Report, error) {
	table, err := d.Reports.Report(r.Context(), q)
	if err != nil {
		return nil, err
	}
	return table.Table(), nil
}

// pageURL builds a dashboard link with the non-empty parameters of kv
// (name, value pairs).
func pageURL(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}
