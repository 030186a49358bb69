package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/projections"
)

// readNow is Wednesday 2024-03-06 09:00 in Vietnam.
var readNow = vnTime(2024, 3, 6, 9, 0)

func vnTime(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, hoso.VietnamZone)
}

// readServer serves the read endpoints over a real SQLite read model
// holding five dossiers of quận Long Biên (004), as of readNow:
// D1 resolved early (00127), D2 overdue (00130), D3 due soon (00127),
// D4 paused (00130), D5 in deadline (00127).
func readServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(readHandler(t))
	t.Cleanup(ts.Close)
	return ts
}

// readHandler is readServer's handler.
func readHandler(t testing.TB) http.Handler {
	t.Helper()
	units, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	cal, err := hoso.NewCalendar()
	if err != nil {
		t.Fatal(err)
	}
	received := func(code, unit string, ch hoso.Channel, at, due time.Time) *hoso.Event {
		return &hoso.Event{Type: hoso.EventReceived, Dossier: code, Unit: unit, At: at, Procedure: "1.001776", Channel: ch, Due: due}
	}
	events := []*hoso.Event{
		received("D1", "00127", hoso.ChannelDirect, vnTime(2024, 3, 1, 9, 0), vnTime(2024, 3, 5, 17, 0)),
		received("D2", "00130", hoso.ChannelOnline, vnTime(2024, 3, 1, 10, 0), vnTime(2024, 3, 4, 17, 0)),
		{Type: hoso.EventResolved, Dossier: "D1", Unit: "00127", At: vnTime(2024, 3, 4, 10, 0), Outcome: hoso.OutcomeApproved},
		received("D3", "00127", hoso.ChannelPostal, vnTime(2024, 3, 4, 9, 0), vnTime(2024, 3, 6, 16, 0)),
		received("D4", "00130", hoso.ChannelDirect, vnTime(2024, 3, 4, 9, 30), vnTime(2024, 3, 20, 17, 0)),
		{Type: hoso.EventSupplementRequested, Dossier: "D4", Unit: "00130", At: vnTime(2024, 3, 5, 9, 0), Reason: "thiếu giấy tờ"},
		received("D5", "00127", hoso.ChannelOnline, vnTime(2024, 3, 5, 14, 0), vnTime(2024, 3, 15, 17, 0)),
	}
	db, _ := projectFixture(t, units, events)
	reads := &projections.Reads{DB: db, Units: units, Calendar: cal, Now: func() time.Time { return readNow }}
	s := handlers.NewServer()
	authorize(t, s)
	s.MountReads(handlers.Reads{Reports: reads, Dossiers: reads, Units: reads})
	return s.Handler()
}

// projectFixture stamps events as the ingest service would (sequence,
// version, id, recorded time), projects them into a new SQLite read model,
// and returns it with each dossier's history.
func projectFixture(t testing.TB, units *hoso.Units, events []*hoso.Event) (*projections.DB, eventHistory) {
	t.Helper()
	dossiers := map[string]*hoso.Dossier{}
	history := eventHistory{}
	msgs := make([]hoso.LedgerEntry, len(events))
	for i, e := range events {
		d := dossiers[e.Dossier]
		if d == nil {
			d = &hoso.Dossier{}
			dossiers[e.Dossier] = d
		}
		e.Seq = uint64(i + 1)
		if err := d.Apply(e); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		e.Version, e.ID, e.RecordedAt = d.Version, fmt.Sprintf("%s-%d", e.Dossier, d.Version), e.At
		data, err := e.MarshalStored()
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = hoso.LedgerEntry{Seq: e.Seq, Time: e.At, Data: data}
		history[e.Dossier] = append(history[e.Dossier], e)
	}
	db, err := projections.Open(filepath.Join(t.TempDir(), "readmodel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := projections.NewProjector(db, units).Apply(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	return db, history
}

func get(t *testing.T, ts *httptest.Server, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authHeader(http.MethodGet, path))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestReportEndpoint(t *testing.T) {
	ts := readServer(t)
	const q = "/v1/report?unit=004&level=ward&from=2024-03-01&to=2024-03-06"
	resp, body := get(t, ts, q)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var rep projections.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Unit != "004" || rep.Level != hoso.LevelWard || rep.AsOfSeq != 7 || len(rep.Rows) < 2 {
		t.Fatalf("report %s", body)
	}
	rows := map[string]hoso.ReportRow{}
	for _, r := range rep.Rows {
		if !r.Balanced() {
			t.Errorf("row %s does not balance: %+v", r.Unit, r)
		}
		rows[r.Unit] = r
	}
	w127, w130 := rows["00127"], rows["00130"]
	if w127.Received != 3 || w127.ResolvedEarly != 1 || w127.Pending != 2 || w127.ReceivedPostal != 1 ||
		w130.Received != 2 || w130.Pending != 2 || w130.PendingPaused != 1 || w130.PendingOverdue != 1 {
		t.Errorf("rows 00127 %+v 00130 %+v", w127, w130)
	}
	tot := rep.Total
	if tot.Received != 5 || tot.Resolved != 1 || tot.Pending != 4 || !tot.Balanced() || tot.OnTimeRate == nil || *tot.OnTimeRate != 1 {
		t.Errorf("total %+v", tot)
	}

	// The same table as CSV, by format= or by Accept.
	resp, csv1 := get(t, ts, q+"&format=csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), handlers.MediaCSV) ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "report-004-ward-2024-03-01-2024-03-06.csv") ||
		!bytes.Contains(csv1, []byte("00127")) {
		t.Fatalf("csv: %d %v %s", resp.StatusCode, resp.Header, csv1)
	}
	resp, csv2 := get(t, ts, q, "Accept", "text/csv")
	if resp.StatusCode != 200 || !bytes.Equal(csv1, csv2) {
		t.Errorf("Accept: text/csv gave %d %s", resp.StatusCode, csv2)
	}
	// XLSX is a zip file.
	resp, x1 := get(t, ts, q+"&format=xlsx")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != handlers.MediaXLSX || !bytes.HasPrefix(x1, []byte("PK")) {
		t.Fatalf("xlsx: %d %v", resp.StatusCode, resp.Header)
	}
	resp, x2 := get(t, ts, q, "Accept", handlers.MediaXLSX)
	if resp.StatusCode != 200 || !bytes.HasPrefix(x2, []byte("PK")) {
		t.Errorf("Accept xlsx: %d", resp.StatusCode)
	}
	// format= wins over Accept.
	if resp, b := get(t, ts, q+"&format=json", "Accept", "text/csv"); resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("format=json with Accept csv: %v %s", resp.Header, b)
	}
	// By procedure: one row for the one procedure.
	_, body = get(t, ts, q+"&by=procedure")
	var byProc projections.Report
	if err := json.Unmarshal(body, &byProc); err != nil || len(byProc.Rows) != 1 || byProc.Rows[0].Procedure != "1.001776" || byProc.Rows[0].Received != 5 {
		t.Errorf("by procedure: %s %v", body, err)
	}
}

// TestReportEndpointLevels: the split by authority level is in the JSON of
// every report, whatever its level and grouping, and sums to the total.
func TestReportEndpointLevels(t *testing.T) {
	ts := readServer(t)
	for _, level := range []string{"", "province", "district", "ward", "office"} {
		for _, by := range []string{"", "unit", "procedure"} {
			q := url.Values{"unit": {"01"}, "from": {"2024-03-01"}, "to": {"2024-03-06"}}
			if level != "" {
				q.Set("level", level)
			}
			if by != "" {
				q.Set("by", by)
			}
			resp, body := get(t, ts, "/v1/report?"+q.Encode())
			var raw struct {
				Levels []map[string]any `json:"levels"`
			}
			var rep projections.Report
			if resp.StatusCode != 200 || json.Unmarshal(body, &raw) != nil || json.Unmarshal(body, &rep) != nil {
				t.Fatalf("%s: %d %s", q.Encode(), resp.StatusCode, body)
			}
			// Hà Nội in 2024: the city, its districts and their wards.
			if len(raw.Levels) != 3 || raw.Levels[0]["level"] != "province" || raw.Levels[1]["level"] != "district" || raw.Levels[2]["level"] != "ward" {
				t.Fatalf("%s: levels %v", q.Encode(), raw.Levels)
			}
			for _, field := range []string{"carried_over", "received", "received_online", "resolved", "pending", "on_time_rate", "resolution_rate", "unassigned"} {
				if _, ok := raw.Levels[2][field]; !ok {
					t.Errorf("%s: no %s in %v", q.Encode(), field, raw.Levels[2])
				}
			}
			var sum hoso.ReportRow
			for i := range rep.Levels {
				if !rep.Levels[i].Balanced() {
					t.Errorf("%s: level %s does not balance", q.Encode(), rep.Levels[i].Level)
				}
				sum.Add(&rep.Levels[i])
			}
			if sum.Received != rep.Total.Received || sum.Resolved != rep.Total.Resolved || sum.Pending != rep.Total.Pending ||
				rep.Levels[2].Received != 5 {
				t.Errorf("%s: levels %+v, total %+v", q.Encode(), rep.Levels, rep.Total)
			}
		}
	}
}

func TestReadEndpointsRefuseBadParameters(t *testing.T) {
	ts := readServer(t)
	const rep = "/v1/report?from=2024-03-01&to=2024-03-06"
	tests := []struct {
		path, field string
	}{
		{rep + "&level=city", "level"},
		{rep + "&unit=99999", "unit"},
		{rep + "&unit=00127&level=district", "level"},
		{rep + "&by=month", "by"},
		{rep + "&format=pdf", "format"},
		{rep + "&colour=red", "colour"},
		{rep + "&unit=004&unit=002", "unit"},
		{"/v1/report?from=2024-13-01&to=2024-03-06", "from"},
		{"/v1/report?from=2024-03-01", "to"},
		{"/v1/report?to=2024-03-06", "from"},
		{"/v1/report?from=2024-03-06&to=2024-03-01", "to"},
		{"/v1/report?from=2024-02-01&to=2024-02-30", "to"},
		{rep + "&unit=004&level=province", "level"},
		{rep + "&unit=HN-TTPVHCC", "unit"},
		// Quận Long Biên ended at the 2025 reform.
		{"/v1/report?unit=004&from=2025-08-01&to=2025-08-31", "unit"},
		{rep + "&level=ward&by=level", "by"},
		{"/v1/dossiers?state=late", "state"},
		{"/v1/dossiers?limit=0", "limit"},
		{"/v1/dossiers?limit=ten", "limit"},
		{"/v1/dossiers?limit=100000", "limit"},
		{"/v1/dossiers?due_before=yesterday", "due_before"},
		{"/v1/dossiers?cursor=zzz", "cursor"},
		{"/v1/dossiers?unit=99999", "unit"},
		{"/v1/dossiers?owner=00127", "owner"},
		{"/v1/units/004?depth=2", "depth"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, ts, tt.path)
			var eb hoso.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || resp.StatusCode != 400 || eb.Error.Code != hoso.EINVALID {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if eb.Error.Field != tt.field || !strings.Contains(eb.Error.Message, tt.field) {
				t.Errorf("error does not name %q: %s", tt.field, body)
			}
		})
	}
}

type listing struct {
	Dossiers []struct {
		Code           string `json:"code"`
		Owner          string `json:"owner"`
		State          string `json:"state"`
		Classification string `json:"classification"`
	} `json:"dossiers"`
	NextCursor string `json:"next_cursor"`
	AsOfSeq    uint64 `json:"as_of_seq"`
}

func (l listing) codes() string {
	var out []string
	for _, d := range l.Dossiers {
		out = append(out, d.Code)
	}
	return strings.Join(out, ",")
}

func TestListDossiersEndpoint(t *testing.T) {
	ts := readServer(t)
	list := func(query string) listing {
		t.Helper()
		resp, body := get(t, ts, "/v1/dossiers?"+query)
		var l listing
		if err := json.Unmarshal(body, &l); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
		}
		return l
	}
	// Ordered by due, then code.
	tests := []struct{ query, want string }{
		{"", "D2,D1,D3,D5,D4"},
		{"unit=004", "D2,D1,D3,D5,D4"},
		{"unit=00127", "D1,D3,D5"},
		{"unit=00130&state=awaiting_supplement", "D4"},
		{"state=overdue", "D2"},
		{"state=due_soon", "D3"},
		{"state=in_deadline", "D3,D5"},
		{"state=resolved", "D1"},
		{"due_before=2024-03-06", "D2,D1"},
		{"due_before=" + url.QueryEscape("2024-03-06T16:00:01+07:00"), "D2,D1,D3"},
		{"unit=00133", ""},
	}
	for _, tt := range tests {
		if got := list(tt.query).codes(); got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.query, got, tt.want)
		}
	}
	l := list("state=overdue")
	if l.AsOfSeq != 7 || l.Dossiers[0].Classification != "overdue" || l.Dossiers[0].Owner != "00130" {
		t.Errorf("overdue listing %+v", l)
	}
	// Pages of two, following the cursor, give every dossier once.
	var all []string
	cursor := ""
	for page := 0; page < 5; page++ {
		q := "limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		l := list(q)
		if len(l.Dossiers) > 2 {
			t.Fatalf("page of %d", len(l.Dossiers))
		}
		all = append(all, l.codes())
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if got := strings.Join(all, ","); got != "D2,D1,D3,D5,D4" {
		t.Errorf("paged: %s", got)
	}
}

func TestUnitEndpoint(t *testing.T) {
	ts := readServer(t)
	resp, body := get(t, ts, "/v1/units/004")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var v hoso.UnitView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	want := hoso.Backlog{Open: 4, InDeadline: 1, DueSoon: 1, Overdue: 1, Paused: 1}
	if v.Code != "004" || v.Level != hoso.LevelDistrict || v.Backlog != want || v.AsOfSeq != 7 || len(v.Children) < 2 {
		t.Fatalf("unit %s", body)
	}
	children := map[string]hoso.Backlog{}
	for _, c := range v.Children {
		if c.Parent != "004" || c.Level != hoso.LevelWard {
			t.Errorf("child %+v", c.Unit)
		}
		children[c.Code] = c.Backlog
	}
	if b := children["00127"]; b != (hoso.Backlog{Open: 2, InDeadline: 1, DueSoon: 1}) {
		t.Errorf("00127 backlog %+v", b)
	}
	if b := children["00130"]; b != (hoso.Backlog{Open: 2, Overdue: 1, Paused: 1}) {
		t.Errorf("00130 backlog %+v", b)
	}
	if b, ok := children["00133"]; !ok || b != (hoso.Backlog{}) {
		t.Errorf("00133 backlog %+v %v", b, ok)
	}
	// The province sees the district's backlog in its row.
	_, body = get(t, ts, "/v1/units/01")
	if err := json.Unmarshal(body, &v); err != nil || v.Backlog != want {
		t.Fatalf("province %s", body)
	}
	for _, c := range v.Children {
		if c.Code == "004" && c.Backlog != want {
			t.Errorf("district in province %+v", c.Backlog)
		}
	}
	if resp, body := get(t, ts, "/v1/units/99999"); resp.StatusCode != 404 {
		t.Errorf("unknown unit: %d %s", resp.StatusCode, body)
	}
}

// FuzzReadQuery sends arbitrary query strings to the read endpoints: every
// answer is 200, or 400 with an error body, never a server fault.
func FuzzReadQuery(f *testing.F) {
	for _, s := range []string{
		"unit=004&level=ward&from=2024-03-01&to=2024-03-06",
		"from=2024-03-01&to=2024-03-06&format=csv&by=procedure",
		"state=due_soon&limit=2", "due_before=2024-03-06&cursor=abc", "%zz=1", "unit=004&unit=004",
	} {
		f.Add(s)
	}
	h := readHandler(f)
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/v1/report", "/v1/dossiers", "/v1/units/004"} {
			req := authedRequest(http.MethodGet, path, nil)
			req.URL.RawQuery = query
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			switch rec.Code {
			case 200:
			case 400:
				var eb hoso.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != hoso.EINVALID || eb.Error.Message == "" {
					t.Fatalf("%s?%s: 400 body %s", path, query, body)
				}
			default:
				t.Fatalf("%s?%s: %d %s", path, query, rec.Code, body)
			}
		}
	})
}
