package handlers

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Media types of the report's table renderings.
const (
	MediaCSV  = "text/csv"
	MediaXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// Reads are the services behind the read endpoints.
type Reads struct {
	Reports  hoso.ReportService
	Dossiers hoso.DossierLister
	Units    hoso.UnitService
}

// MountReads registers the read endpoints: GET /v1/report, GET /v1/dossiers
// and GET /v1/units/{code}. A nil service leaves its route out.
//
// Each reads through its service scoped to the request's principal (Units
// must be set first).
func (s *Server) MountReads(r Reads) {
	sc := s.scoped()
	if r.Reports != nil {
		reports := sc.reports(r.Reports)
		s.Handle("GET /v1/report", Readers, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { s.handleReport(w, req, reports) }))
	}
	if r.Dossiers != nil {
		lister := sc.lister(r.Dossiers)
		s.Handle("GET /v1/dossiers", Readers, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { s.handleListDossiers(w, req, lister) }))
	}
	if r.Units != nil {
		units := sc.unitService(r.Units)
		s.Handle("GET /v1/units/{code}", Readers, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { s.handleGetUnit(w, req, units) }))
	}
}

// queryParams reads the query string, refusing a parameter that is not in
// allowed or is given twice, so that a typo is never silently ignored.
func queryParams(r *http.Request, allowed ...string) (map[string]string, error) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, hoso.Errorf(hoso.EINVALID, "query string: %v", err)
	}
	out := make(map[string]string, len(values))
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			return nil, hoso.FieldErrorf(name, "unknown query parameter (allowed: %s)", strings.Join(allowed, ", "))
		}
		if len(values[name]) > 1 {
			return nil, hoso.FieldErrorf(name, "given %d times; give it once", len(values[name]))
		}
		out[name] = values[name][0]
	}
	return out, nil
}

// reportFormat is the rendering asked for: format= wins over Accept.
func reportFormat(r *http.Request, format string) (string, error) {
	switch format {
	case "json", "csv", "xlsx":
		return format, nil
	case "":
	default:
		return "", hoso.FieldErrorf("format", "must be json, csv or xlsx, got %q", format)
	}
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case MediaCSV:
			return "csv", nil
		case MediaXLSX:
			return "xlsx", nil
		case "application/json":
			return "json", nil
		}
	}
	return "json", nil
}

func (s *Server) handleReport(w http.ResponseWriter, r *http.Request, reports hoso.ReportService) {
	p, err := queryParams(r, "unit", "level", "from", "to", "by", "format")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	format, err := reportFormat(r, p["format"])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if l := p["level"]; l != "" {
		if _, err := hoso.ParseLevel(l); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	q := hoso.ReportQuery{Unit: p["unit"], Level: hoso.Level(p["level"]), From: p["from"], To: p["to"], By: p["by"]}
	rep, err := reports.Report(r.Context(), q)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if s.Proofs != nil {
		// No checkpoint covers the newest events yet: the report answers
		// without one rather than waiting for the next.
		if cp, err := s.Proofs.CheckpointAtOrAfter(r.Context(), rep.Table().AsOfSeq); err == nil {
			rep.Table().Checkpoint = &cp
		} else if hoso.ErrorCode(err) != hoso.ENOTFOUND {
			s.Error(w, r, err)
			return
		}
	}
	var buf bytes.Buffer
	var ctype string
	switch format {
	case "json":
		s.writeJSON(w, r, http.StatusOK, rep)
		return
	case "csv":
		ctype, err = MediaCSV+"; charset=utf-8", rep.CSV(&buf)
	case "xlsx":
		ctype, err = MediaXLSX, rep.XLSX(&buf)
	}
	if err != nil {
		s.Error(w, r, fmt.Errorf("render report as %s: %w", format, err))
		return
	}
	name := "report"
	for _, part := range []string{q.Unit, string(q.Level), q.From, q.To} {
		if part != "" {
			name += "-" + part
		}
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name + "." + format}))
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes()) // a failed write means the client left
}

func (s *Server) handleListDossiers(w http.ResponseWriter, r *http.Request, lister hoso.DossierLister) {
	p, err := queryParams(r, "unit", "state", "due_before", "cursor", "limit")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	f := hoso.DossierFilter{Unit: p["unit"], State: p["state"], Cursor: p["cursor"]}
	if v, ok := p["due_before"]; ok {
		if f.DueBefore, err = parseInstant(v); err != nil {
			s.Error(w, r, hoso.FieldErrorf("due_before", "must be RFC 3339 (2024-03-04T17:00:00+07:00) or a local date YYYY-MM-DD, got %q", v))
			return
		}
	}
	if v, ok := p["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.Error(w, r, hoso.FieldErrorf("limit", "must be a whole number from 1, got %q", v))
			return
		}
		f.Limit = n
	}
	page, err := lister.ListDossiers(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

// parseInstant reads RFC 3339, or a date as the start of that day in Vietnam.
func parseInstant(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.ParseInLocation(time.DateOnly, v, hoso.VietnamZone)
}

func (s *Server) handleGetUnit(w http.ResponseWriter, r *http.Request, units hoso.UnitService) {
	if _, err := queryParams(r); err != nil {
		s.Error(w, r, err)
		return
	}
	view, err := units.FindUnit(r.Context(), r.PathValue("code"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, view)
}
