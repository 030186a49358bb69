package handlers_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/projections"
)

// eventHistory is the ledger's per-dossier history of the dashboard's
// fixture: what the event store's LoadDossier answers.
type eventHistory map[string][]*hoso.Event

func (h eventHistory) LoadDossier(_ context.Context, code string) ([]*hoso.Event, error) {
	return h[code], nil
}

// dashboardServer serves the dashboard and the read API over a real SQLite
// read model holding eight dossiers of quận Long Biên (004), as of readNow
// (2024-03-06 09:00). Over 2024-03-01…2024-03-05:
//
//	00127: received D1 direct, D3 postal, D5 online, D7 direct; D7
//	       transferred out to 00130; D1 resolved early; D3, D5 in deadline.
//	00130: D6 carried over and resolved late; received D2 online, D4
//	       direct, D8 postal; D7 transferred in and resolved on time; D2
//	       and D8 overdue; D4 paused.
func dashboardServer(t testing.TB, pageSize int) *httptest.Server {
	t.Helper()
	return dashboardServerWith(t, pageSize)
}

// dashboardServerWith is dashboardServer with more events after the
// fixture's.
func dashboardServerWith(t testing.TB, pageSize int, more ...*hoso.Event) *httptest.Server {
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
		received("D6", "00130", hoso.ChannelOnline, vnTime(2024, 2, 26, 9, 0), vnTime(2024, 2, 28, 17, 0)),
		received("D1", "00127", hoso.ChannelDirect, vnTime(2024, 3, 1, 9, 0), vnTime(2024, 3, 5, 17, 0)),
		received("D7", "00127", hoso.ChannelDirect, vnTime(2024, 3, 1, 8, 30), vnTime(2024, 3, 4, 17, 0)),
		received("D2", "00130", hoso.ChannelOnline, vnTime(2024, 3, 1, 10, 0), vnTime(2024, 3, 4, 17, 0)),
		{Type: hoso.EventResolved, Dossier: "D6", Unit: "00130", At: vnTime(2024, 3, 1, 10, 0), Outcome: hoso.OutcomeApproved},
		{Type: hoso.EventTransferred, Dossier: "D7", Unit: "00127", ToUnit: "00130", At: vnTime(2024, 3, 1, 11, 0)},
		{Type: hoso.EventResolved, Dossier: "D1", Unit: "00127", At: vnTime(2024, 3, 4, 10, 0), Outcome: hoso.OutcomeApproved},
		{Type: hoso.EventResolved, Dossier: "D7", Unit: "00130", At: vnTime(2024, 3, 4, 15, 0), Outcome: hoso.OutcomeRejected},
		received("D3", "00127", hoso.ChannelPostal, vnTime(2024, 3, 4, 9, 0), vnTime(2024, 3, 6, 16, 0)),
		received("D4", "00130", hoso.ChannelDirect, vnTime(2024, 3, 4, 9, 30), vnTime(2024, 3, 20, 17, 0)),
		{Type: hoso.EventSupplementRequested, Dossier: "D4", Unit: "00130", At: vnTime(2024, 3, 5, 9, 0), Reason: "thiếu <giấy tờ>"},
		received("D8", "00130", hoso.ChannelPostal, vnTime(2024, 3, 5, 8, 0), vnTime(2024, 3, 5, 17, 0)),
		received("D5", "00127", hoso.ChannelOnline, vnTime(2024, 3, 5, 14, 0), vnTime(2024, 3, 15, 17, 0)),
	}
	db, history := projectFixture(t, units, append(events, more...))
	now := func() time.Time { return readNow }
	reads := &projections.Reads{DB: db, Units: units, Calendar: cal, Now: now}
	s := handlers.NewServer()
	authorize(t, s)
	s.MountReads(handlers.Reads{Reports: reads, Dossiers: reads, Units: reads})
	if err := s.MountDashboard(handlers.Dashboard{
		Reports: reads, Lister: reads, Units: reads,
		Dossiers: &projections.Dossiers{DB: db, History: history, Now: now},
		Registry: units, Now: now, PageSize: pageSize,
	}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// page gets path and parses the answer as HTML.
func page(t *testing.T, ts *httptest.Server, path string) (*http.Response, *html.Node, string) {
	t.Helper()
	resp, body := get(t, ts, path)
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp, doc, string(body)
}

// text is the node's text with runs of white space made one space.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// findAll returns the element nodes for which match holds, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if n.Type == html.ElementNode && match(n) {
		out = append(out, n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, findAll(c, match)...)
	}
	return out
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == name }
}

// rowCells returns the texts of the td cells of the table row whose row
// header (th) text starts with header; nil when there is none.
func rowCells(doc *html.Node, header string) []string {
	for _, tr := range findAll(doc, tag("tr")) {
		ths := findAll(tr, tag("th"))
		if len(ths) == 0 || !strings.HasPrefix(text(ths[0]), header) {
			continue
		}
		var cells []string
		for _, td := range findAll(tr, tag("td")) {
			cells = append(cells, text(td))
		}
		return cells
	}
	return nil
}

// The report table's data columns after STT, in order.
var reportColumns = []string{
	"carried_over", "received", "received_online", "received_direct", "received_postal",
	"resolved", "resolved_early", "resolved_on_time", "resolved_late",
	"pending", "pending_in_deadline", "pending_overdue", "pending_paused",
	"transferred_in", "transferred_out", "withdrawn", "on_time_rate", "resolution_rate",
}

// reportRowValues maps the report columns of the row named header.
func reportRowValues(t *testing.T, doc *html.Node, header string) map[string]string {
	t.Helper()
	cells := rowCells(doc, header)
	if len(cells) != 1+len(reportColumns) {
		t.Fatalf("row %q: %d cells %q", header, len(cells), cells)
	}
	out := map[string]string{}
	for i, c := range reportColumns {
		out[c] = cells[i+1]
	}
	return out
}

func TestDashboardReportNumbers(t *testing.T) {
	ts := dashboardServer(t, 0)
	resp, doc, body := page(t, ts, "/?unit=004&level=ward&from=2024-03-01&to=2024-03-05")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	want := map[string]map[string]string{
		"Phường Việt Hưng": {
			"carried_over": "0", "received": "4", "received_online": "1", "received_direct": "2", "received_postal": "1",
			"resolved": "1", "resolved_early": "1", "resolved_on_time": "0", "resolved_late": "0",
			"pending": "2", "pending_in_deadline": "2", "pending_overdue": "0", "pending_paused": "0",
			"transferred_in": "0", "transferred_out": "1", "withdrawn": "0",
			"on_time_rate": "100,0 %", "resolution_rate": "33,3 %",
		},
		"Phường Gia Thụy": {
			"carried_over": "1", "received": "3", "received_online": "1", "received_direct": "1", "received_postal": "1",
			"resolved": "2", "resolved_early": "0", "resolved_on_time": "1", "resolved_late": "1",
			"pending": "3", "pending_in_deadline": "0", "pending_overdue": "2", "pending_paused": "1",
			"transferred_in": "1", "transferred_out": "0", "withdrawn": "0",
			"on_time_rate": "50,0 %", "resolution_rate": "40,0 %",
		},
		"Tổng cộng": {
			"carried_over": "1", "received": "7", "received_online": "2", "received_direct": "3", "received_postal": "2",
			"resolved": "3", "resolved_early": "1", "resolved_on_time": "1", "resolved_late": "1",
			"pending": "5", "pending_in_deadline": "2", "pending_overdue": "2", "pending_paused": "1",
			"transferred_in": "1", "transferred_out": "1", "withdrawn": "0",
			"on_time_rate": "66,7 %", "resolution_rate": "37,5 %",
		},
	}
	for row, cols := range want {
		got := reportRowValues(t, doc, row)
		for col, v := range cols {
			if got[col] != v {
				t.Errorf("%s %s = %q, want %q", row, col, got[col], v)
			}
		}
	}
	// A ward without dossiers shows zeros and undefined rates.
	if got := reportRowValues(t, doc, "Phường Thạch Bàn"); got["received"] != "0" || got["on_time_rate"] != "—" {
		t.Errorf("quiet ward: %v", got)
	}
	links := map[string]bool{}
	for _, a := range findAll(doc, tag("a")) {
		links[attr(a, "href")] = true
	}
	for _, l := range []string{
		"/units/00127", "/units/00130",
		"/v1/report?format=csv&from=2024-03-01&level=ward&to=2024-03-05&unit=004",
		"/v1/report?format=xlsx&from=2024-03-01&level=ward&to=2024-03-05&unit=004",
	} {
		if !links[l] {
			t.Errorf("no link to %s", l)
		}
	}
	// The export links answer the same table.
	resp, csv := get(t, ts, "/v1/report?format=csv&from=2024-03-01&level=ward&to=2024-03-05&unit=004")
	if resp.StatusCode != 200 || !strings.Contains(string(csv), "Phường Gia Thụy") {
		t.Errorf("csv export: %d %s", resp.StatusCode, csv)
	}
}

func TestDashboardDefaults(t *testing.T) {
	ts := dashboardServer(t, 0)
	resp, doc, body := page(t, ts, "/")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The province with the most dossiers, by district, this year so far.
	if h1 := findAll(doc, tag("h1")); len(h1) != 1 || text(h1[0]) != "Thành phố Hà Nội" {
		t.Fatalf("h1 %v", body)
	}
	for _, in := range findAll(doc, tag("input")) {
		want := map[string]string{"from": "2024-01-01", "to": "2024-03-06"}[attr(in, "name")]
		if attr(in, "value") != want {
			t.Errorf("input %s = %q, want %q", attr(in, "name"), attr(in, "value"), want)
		}
	}
	if got := reportRowValues(t, doc, "Quận Long Biên"); got["received"] != "8" || got["pending"] != "5" || got["resolved_late"] != "1" {
		t.Errorf("Long Biên row %v", got)
	}
	if got := reportRowValues(t, doc, "Tổng cộng"); got["received"] != "8" || got["on_time_rate"] != "66,7 %" {
		t.Errorf("total row %v", got)
	}
	// unit= with no value is the whole country, by province.
	_, doc, _ = page(t, ts, "/?unit=&from=2024-03-01&to=2024-03-05")
	if got := reportRowValues(t, doc, "Thành phố Hà Nội"); got["received"] != "7" || got["carried_over"] != "1" {
		t.Errorf("Hà Nội row of the country %v", got)
	}
}

// TestDashboardReportLevels: the split by authority level above the table,
// four figures per level, and the district's own desk marked as such.
func TestDashboardReportLevels(t *testing.T) {
	ts := dashboardServerWith(t, 0,
		&hoso.Event{Type: hoso.EventReceived, Dossier: "Q1", Unit: "004", At: vnTime(2024, 3, 4, 9, 0),
			Procedure: "1.001776", Channel: hoso.ChannelOnline, Due: vnTime(2024, 3, 5, 17, 0)})
	_, doc, body := page(t, ts, "/?unit=004&level=ward&from=2024-03-01&to=2024-03-05")
	var split *html.Node
	for _, tb := range findAll(doc, tag("table")) {
		if attr(tb, "class") == "levels" {
			split = tb
		}
	}
	if split == nil {
		t.Fatalf("no split by level: %s", body)
	}
	if c := rowCells(split, "Cấp huyện"); len(c) != 4 || c[0] != "1" || c[3] != "1" {
		t.Errorf("Cấp huyện %q", c)
	}
	if c := rowCells(split, "Cấp xã"); len(c) != 4 || c[0] != "7" || c[2] != "66,7 %" {
		t.Errorf("Cấp xã %q", c)
	}
	var own *html.Node
	for _, tr := range findAll(doc, tag("tr")) {
		if attr(tr, "class") == "own" {
			own = tr
		}
	}
	if own == nil || !strings.HasPrefix(text(own), "1 Quận Long Biên (cấp quận) 004 tại chính đơn vị") {
		t.Fatalf("no own row marked first: %s", body)
	}
	if got := reportRowValues(t, doc, "Quận Long Biên (cấp quận)"); got["received"] != "1" || got["pending_overdue"] != "1" {
		t.Errorf("own row %v", got)
	}
	if got := reportRowValues(t, doc, "Tổng cộng"); got["received"] != "8" {
		t.Errorf("total %v", got)
	}
	if !strings.Contains(body, "tại chính đơn vị”: hồ sơ do chính đơn vị cấp trên") {
		t.Errorf("no note on own rows")
	}
}

func TestDashboardEmptyStates(t *testing.T) {
	ts := dashboardServer(t, 0)
	// A period before any dossier: explained, with a link to the last year
	// that had some (none here: the fixture is this year).
	_, _, body := page(t, ts, "/?unit=004&from=2023-01-01&to=2023-12-31")
	if !strings.Contains(body, "Không có hồ sơ nào trong kỳ này") {
		t.Errorf("no quiet-period note: %s", body)
	}
	// A ward has no units of the district level.
	_, _, body = page(t, ts, "/?unit=00127&level=office&from=2024-03-01&to=2024-03-05")
	if !strings.Contains(body, "không có đơn vị nào ở cấp") {
		t.Errorf("no empty-level note: %s", body)
	}
}

func TestDashboardUnitPage(t *testing.T) {
	ts := dashboardServer(t, 1)
	resp, doc, body := page(t, ts, "/units/004")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	dd := map[string]string{}
	for _, div := range findAll(doc, tag("div")) {
		dts, dds := findAll(div, tag("dt")), findAll(div, tag("dd"))
		if len(dts) == 1 && len(dds) == 1 {
			dd[text(dts[0])] = text(dds[0])
		}
	}
	// Now (2024-03-06 09:00): D2 and D8 overdue, D3 due soon (16:00
	// today), D4 paused, D5 in deadline.
	for k, v := range map[string]string{"Đang giải quyết": "5", "Quá hạn": "2", "Sắp đến hạn": "1", "Tạm dừng, chờ bổ sung": "1", "Trong hạn, chưa đến gần hạn": "1"} {
		if dd[k] != v {
			t.Errorf("%s = %q, want %q (%v)", k, dd[k], v, dd)
		}
	}
	if c := rowCells(doc, "Phường Gia Thụy"); len(c) != 5 || c[0] != "3" || c[3] != "2" {
		t.Errorf("child 00130 backlog %v", c)
	}
	// One dossier a page: the overdue list pages on, the due-soon list
	// stays where it is.
	lists := unitLists(doc)
	if got := lists["Hồ sơ quá hạn"]; strings.Join(got.dossiers, " ") != "/dossiers/D2" || got.next == "" {
		t.Fatalf("overdue page 1 %+v", got)
	}
	if got := lists["Hồ sơ sắp đến hạn"]; strings.Join(got.dossiers, " ") != "/dossiers/D3" || got.next != "" {
		t.Errorf("due-soon list %+v", got)
	}
	_, doc, body = page(t, ts, lists["Hồ sơ quá hạn"].next)
	lists = unitLists(doc)
	if got := lists["Hồ sơ quá hạn"]; strings.Join(got.dossiers, " ") != "/dossiers/D8" || got.next != "" {
		t.Errorf("overdue page 2 %+v: %s", got, body)
	}
	if got := lists["Hồ sơ sắp đến hạn"]; strings.Join(got.dossiers, " ") != "/dossiers/D3" {
		t.Errorf("due-soon list on overdue page 2 %+v", got)
	}
	if !strings.Contains(body, "Trang đầu") {
		t.Errorf("page 2 has no link back to the first")
	}
}

// unitListLinks are a unit page's list: its dossier links and next page.
type unitListLinks struct {
	dossiers []string
	next     string
}

func unitLists(doc *html.Node) map[string]unitListLinks {
	out := map[string]unitListLinks{}
	for _, s := range findAll(doc, func(n *html.Node) bool { return n.Data == "section" && attr(n, "class") == "list" }) {
		var l unitListLinks
		for _, a := range findAll(s, tag("a")) {
			switch href := attr(a, "href"); {
			case attr(a, "rel") == "next":
				l.next = href
			case strings.HasPrefix(href, "/dossiers/"):
				l.dossiers = append(l.dossiers, href)
			}
		}
		out[text(findAll(s, tag("h2"))[0])] = l
	}
	return out
}

func TestDashboardGoneUnit(t *testing.T) {
	ts := dashboardServer(t, 0)
	// Huyện Thông Nông (044) of Cao Bằng (04) ended on 2020-03-01.
	// Its page shows it as it last stood, with a notice of when it ended.
	resp, doc, body := page(t, ts, "/units/044")
	if resp.StatusCode != 200 || !strings.Contains(body, "Huyện Thông Nông") || !strings.Contains(body, "01/03/2020") || !strings.Contains(body, `class="notice"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var links []string
	for _, a := range findAll(doc, tag("a")) {
		links = append(links, attr(a, "href"))
	}
	if !strings.Contains(strings.Join(links, " "), "/units/04 ") {
		t.Errorf("no link to the province: %v", links)
	}
}

func TestDossierPage(t *testing.T) {
	ts := dashboardServer(t, 0)
	resp, doc, body := page(t, ts, "/dossiers/D7")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, s := range []string{"Đã giải quyết", "Đúng hạn", "Phường Gia Thụy", "04/03/2024 17:00", "Từ chối"} {
		if !strings.Contains(body, s) {
			t.Errorf("dossier page lacks %q", s)
		}
	}
	var rows [][]string
	for _, tr := range findAll(doc, tag("tr")) {
		var cells []string
		for _, td := range findAll(tr, tag("td")) {
			cells = append(cells, text(td))
		}
		if len(cells) > 0 {
			rows = append(rows, cells)
		}
	}
	want := [][]string{
		{"3", "1", "Tiếp nhận received", "01/03/2024 08:30"},
		{"6", "2", "Chuyển xử lý transferred", "01/03/2024 11:00"},
		{"8", "3", "Giải quyết xong resolved", "04/03/2024 15:00"},
	}
	if len(rows) != len(want) {
		t.Fatalf("events %v", rows)
	}
	for i, w := range want {
		if strings.Join(rows[i][:4], "|") != strings.Join(w, "|") {
			t.Errorf("event %d: %v, want %v", i, rows[i][:4], w)
		}
	}
	// Free text is escaped, never markup.
	_, _, body = page(t, ts, "/dossiers/D4")
	if !strings.Contains(body, "thiếu &lt;giấy tờ&gt;") {
		t.Errorf("reason not escaped: %s", body)
	}
}

// Each event of a dossier's page says who submitted it: the desk's
// principal, hoso for the ledger's own, and a dash for an event stored
// before the ledger recorded submitters.
func TestDossierPageShowsWhoSubmitted(t *testing.T) {
	ts := dashboardServerWith(t, 0,
		&hoso.Event{Type: hoso.EventReceived, Dossier: "D9", Unit: "00127", At: vnTime(2024, 3, 5, 9, 0), Procedure: "1.001776",
			Channel: hoso.ChannelDirect, Due: vnTime(2024, 3, 5, 17, 0), By: "desk-00127"},
		&hoso.Event{Type: hoso.EventOverdue, Dossier: "D9", Unit: "00127", At: vnTime(2024, 3, 5, 17, 0), By: hoso.SystemPrincipal},
		&hoso.Event{Type: hoso.EventResolved, Dossier: "D9", Unit: "00127", At: vnTime(2024, 3, 6, 8, 30), By: "sup-<b>"},
	)
	submitters := func(path string) []string {
		t.Helper()
		resp, doc, body := page(t, ts, path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var by []string
		for _, td := range findAll(doc, func(n *html.Node) bool { return n.Data == "td" && attr(n, "class") == "by" }) {
			by = append(by, text(td))
		}
		return by
	}
	if got, want := strings.Join(submitters("/dossiers/D9"), " "), "desk-00127 hoso sup-<b>"; got != want {
		t.Errorf("D9's submitters %q, want %q", got, want)
	}
	// The fixture's D7 was stored without by.
	if got, want := strings.Join(submitters("/dossiers/D7"), " "), "— — —"; got != want {
		t.Errorf("D7's submitters %q, want %q", got, want)
	}
	_, _, body := page(t, ts, "/dossiers/D9")
	if strings.Contains(body, "sup-<b>") || !strings.Contains(body, "sup-&lt;b&gt;") {
		t.Errorf("a submitter's name is not escaped")
	}
	if !strings.Contains(body, "Người gửi") {
		t.Errorf("no submitter column")
	}
}

func TestDashboardBadInput(t *testing.T) {
	ts := dashboardServer(t, 0)
	for _, tc := range []struct {
		path   string
		status int
		field  string
	}{
		{"/?from=2024-13-01", 400, "from"},
		{"/?to=yesterday", 400, "to"},
		{"/?from=2024-03-05&to=2024-03-01", 400, "to"},
		{"/?unit=999", 400, "unit"},
		{"/?unit=004&level=county", 400, "level"},
		{"/?unit=00127&level=province&from=2024-03-01&to=2024-03-05", 400, "level"},
		{"/?unit=004&unit=005", 400, "unit"},
		{"/?colour=red", 400, "colour"},
		{"/units/004?overdue_cursor=zzz", 400, "overdue_cursor"},
		{"/units/004?due_soon_cursor=%00", 400, "due_soon_cursor"},
		{"/units/004?page=2", 400, "page"},
		{"/dossiers/D1?x=1", 400, "x"},
		{"/units/99999", 404, ""},
		{"/dossiers/NOPE", 404, ""},
	} {
		resp, doc, body := page(t, ts, tc.path)
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if tc.field == "" {
			continue
		}
		codes := findAll(doc, tag("code"))
		if len(codes) != 1 || text(codes[0]) != tc.field {
			t.Errorf("%s: field not named %q: %s", tc.path, tc.field, body)
		}
	}
}

func TestDashboardStatic(t *testing.T) {
	ts := dashboardServer(t, 0)
	resp, body := get(t, ts, "/static/dashboard.css")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !bytes.Contains(body, []byte("@media print")) {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Pages use nothing from elsewhere.
	_, _, page := page(t, ts, "/")
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "<script") {
		t.Errorf("page refers outside the server or runs scripts")
	}
}

func FuzzDashboardQuery(f *testing.F) {
	for _, s := range []string{
		"unit=004&level=ward&from=2024-03-01&to=2024-03-05", "unit=", "from=2024-02-30", "level=office&unit=00127",
		"overdue_cursor=abc", "due_soon_cursor=eyJkIjoxfQ", "%zz=1", "unit=004&unit=004", "to=0001-01-01",
	} {
		f.Add(s)
	}
	ts := dashboardServer(f, 1)
	h := ts.Config.Handler
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/", "/units/004", "/dossiers/D1"} {
			req := authedRequest(http.MethodGet, path, nil)
			req.URL.RawQuery = query
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 400:
			default:
				t.Fatalf("%s?%s: %d %s", path, query, rec.Code, rec.Body)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("%s?%s: content type %q", path, query, rec.Header().Get("Content-Type"))
			}
		}
	})
}

// TestSecurityHeaders: every answer, page or JSON, success or error,
// signed in or not, carries the content policy, no framing, no referrer
// and nosniff (the middleware's, not each writer's).
func TestSecurityHeaders(t *testing.T) {
	ts := dashboardServer(t, 20)
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
	}
	for _, tt := range []struct {
		path   string
		header []string
	}{
		{"/?unit=004&from=2024-03-01&to=2024-03-05", nil},
		{"/units/004", nil},
		{"/v1/report?unit=004&format=csv", nil},
		{"/v1/report?unit=004", nil},
		{"/v1/report?unit=004&level=nope", nil},
		{"/no/such/route", nil},
		{"/healthz", nil},
		{"/sign-in", nil},
		{"/static/dashboard.css", nil},
		{"/v1/report?unit=004", []string{"Authorization", "Bearer tok-nobody"}},
	} {
		resp, _ := get(t, ts, tt.path, tt.header...)
		for name, value := range want {
			if got := resp.Header.Get(name); got != value {
				t.Errorf("%s (%d): %s = %q, want %q", tt.path, resp.StatusCode, name, got, value)
			}
		}
	}
}
