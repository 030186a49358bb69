package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/projections"
)

// lookupClock is a clock the test moves by hand.
type lookupClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lookupClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lookupClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Personal data in the fixture's reasons and the names of who submitted
// its events: none of it may reach a citizen.
var lookupSecrets = []string{
	"Nguyễn Văn An", "001234567890", "thiếu giấy khai sinh", "xin lỗi vì chậm", "không còn nhu cầu",
	"desk-ngoc-thuy", "desk-gia-thuy", "can-bo-binh", `"by"`, `"reason"`, `"events"`, `"seq"`,
}

// lookupServer serves the lookup (and nothing else but the defaults) over a
// real SQLite read model of four dossiers whose events carry reasons and
// submitters, as of readNow; burst is the lookups an address may make.
func lookupServer(t *testing.T, burst int) (http.Handler, *lookupClock, *hoso.Units, hoso.DossierService) {
	t.Helper()
	units, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	received := func(code string, at, due time.Time, by string) *hoso.Event {
		return &hoso.Event{Type: hoso.EventReceived, Dossier: code, Unit: "00127", At: at, Procedure: "1.001776", Channel: hoso.ChannelDirect, Due: due, By: by}
	}
	events := []*hoso.Event{
		received("L-PAUSED", vnTime(2024, 3, 1, 9, 0), vnTime(2024, 3, 8, 17, 0), "desk-ngoc-thuy"),
		{Type: hoso.EventSupplementRequested, Dossier: "L-PAUSED", Unit: "00127", At: vnTime(2024, 3, 4, 9, 0),
			Reason: "thiếu giấy khai sinh của Nguyễn Văn An, CCCD 001234567890", By: "can-bo-binh"},
		received("L-OVERDUE", vnTime(2024, 3, 1, 9, 30), vnTime(2024, 3, 4, 17, 0), "desk-ngoc-thuy"),
		{Type: hoso.EventExtended, Dossier: "L-OVERDUE", Unit: "00127", At: vnTime(2024, 3, 4, 16, 0),
			Due: vnTime(2024, 3, 11, 17, 0), Reason: "xin lỗi vì chậm: Nguyễn Văn An", By: "can-bo-binh"},
		{Type: hoso.EventOverdue, Dossier: "L-OVERDUE", Unit: "00127", At: vnTime(2024, 3, 4, 17, 0), By: hoso.SystemPrincipal},
		received("L-WITHDRAWN", vnTime(2024, 3, 1, 10, 0), vnTime(2024, 3, 8, 17, 0), "desk-ngoc-thuy"),
		{Type: hoso.EventWithdrawn, Dossier: "L-WITHDRAWN", Unit: "00127", At: vnTime(2024, 3, 5, 10, 0),
			Reason: "Nguyễn Văn An không còn nhu cầu", By: "can-bo-binh"},
		received("L-RETURNED", vnTime(2024, 3, 1, 11, 0), vnTime(2024, 3, 6, 17, 0), "desk-ngoc-thuy"),
		{Type: hoso.EventTransferred, Dossier: "L-RETURNED", Unit: "00127", ToUnit: "00130", At: vnTime(2024, 3, 1, 14, 0), By: "desk-ngoc-thuy"},
		{Type: hoso.EventResolved, Dossier: "L-RETURNED", Unit: "00130", At: vnTime(2024, 3, 5, 9, 0), By: "desk-gia-thuy"},
		{Type: hoso.EventReturned, Dossier: "L-RETURNED", Unit: "00130", At: vnTime(2024, 3, 5, 15, 0), By: "desk-gia-thuy"},
	}
	db, history := projectFixture(t, units, events)
	clock := &lookupClock{t: readNow}
	dossiers := &projections.Dossiers{DB: db, History: history, Now: clock.now}
	s := handlers.NewServer()
	authorize(t, s)
	if err := s.MountLookup(handlers.Lookup{Dossiers: dossiers, Registry: units, Now: clock.now, Burst: burst}); err != nil {
		t.Fatal(err)
	}
	return s.Handler(), clock, units, dossiers
}

// lookupGet sends a request without any credentials from addr.
func lookupGet(h http.Handler, path, addr string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = addr + ":40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// lookupAnswer is the whole answer of GET /v1/lookup/{code}: decoding with
// unknown fields refused proves there is nothing more.
type lookupAnswer struct {
	Code         string    `json:"code"`
	Procedure    string    `json:"procedure"`
	ReceivedAt   time.Time `json:"received_at"`
	State        string    `json:"state"`
	StateName    string    `json:"state_name"`
	Due          time.Time `json:"due"`
	Deadline     string    `json:"deadline"`
	DeadlineName string    `json:"deadline_name"`
	Unit         string    `json:"unit"`
	UnitName     string    `json:"unit_name"`
}

func TestLookupTellsOnlyTheState(t *testing.T) {
	h, _, units, dossiers := lookupServer(t, 1000)
	name := func(code string) string {
		u, ok := units.At(code, readNow)
		if !ok {
			t.Fatalf("unit %s", code)
		}
		return u.Name
	}
	for _, tc := range []struct {
		code string
		want lookupAnswer
	}{
		{"L-PAUSED", lookupAnswer{State: "awaiting_supplement", StateName: "Chờ bổ sung hồ sơ", Deadline: "paused",
			DeadlineName: "Tạm dừng tính hạn, chờ bổ sung", Unit: "00127", Due: vnTime(2024, 3, 8, 17, 0), ReceivedAt: vnTime(2024, 3, 1, 9, 0)}},
		// The statutory due counts: the promised date of the apology does not.
		{"L-OVERDUE", lookupAnswer{State: "processing", StateName: "Đang xử lý", Deadline: "overdue",
			DeadlineName: "Quá hạn", Unit: "00127", Due: vnTime(2024, 3, 4, 17, 0), ReceivedAt: vnTime(2024, 3, 1, 9, 30)}},
		{"L-WITHDRAWN", lookupAnswer{State: "withdrawn", StateName: "Đã rút hồ sơ", Unit: "00127",
			Due: vnTime(2024, 3, 8, 17, 0), ReceivedAt: vnTime(2024, 3, 1, 10, 0)}},
		{"L-RETURNED", lookupAnswer{State: "returned", StateName: "Đã trả kết quả", Deadline: "early",
			DeadlineName: "Có kết quả trước hạn", Unit: "00130", Due: vnTime(2024, 3, 6, 17, 0), ReceivedAt: vnTime(2024, 3, 1, 11, 0)}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			w := lookupGet(h, "/v1/lookup/"+tc.code, "127.0.0.1")
			body := w.Body.String()
			got := decode[lookupAnswer](t, w, http.StatusOK)
			want := tc.want
			want.Code, want.Procedure, want.UnitName = tc.code, "1.001776", name(want.Unit)
			if !got.ReceivedAt.Equal(want.ReceivedAt) || !got.Due.Equal(want.Due) {
				t.Errorf("received %v due %v, want %v %v", got.ReceivedAt, got.Due, want.ReceivedAt, want.Due)
			}
			got.ReceivedAt, got.Due, want.ReceivedAt, want.Due = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if got != want {
				t.Errorf("answer\n got %+v\nwant %+v", got, want)
			}
			if !strings.Contains(body, "+07:00") {
				t.Errorf("times not in Vietnam's time: %s", body)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}

			pw := lookupGet(h, "/tra-cuu?ma="+tc.code, "127.0.0.1")
			page := pw.Body.String()
			if pw.Code != http.StatusOK || !strings.HasPrefix(pw.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("page: %d %s", pw.Code, page)
			}
			for _, s := range []string{want.StateName, want.DeadlineName, want.UnitName, "01/03/2024", tc.code} {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, secret := range lookupSecrets {
				if strings.Contains(body, secret) {
					t.Errorf("the JSON answer tells %q: %s", secret, body)
				}
				if strings.Contains(page, secret) {
					t.Errorf("the page tells %q", secret)
				}
			}
		})
	}
	// The dossiers' events do carry the reasons and the submitters: the
	// lookup leaves them out, they are not missing from the fixture.
	var all bytes.Buffer
	for _, code := range []string{"L-PAUSED", "L-OVERDUE", "L-WITHDRAWN", "L-RETURNED"} {
		view, err := dossiers.FindDossier(context.Background(), code)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.NewEncoder(&all).Encode(view); err != nil {
			t.Fatal(err)
		}
	}
	for _, secret := range lookupSecrets {
		if !bytes.Contains(all.Bytes(), []byte(secret)) {
			t.Errorf("the fixture's dossiers lack %q: the test proves nothing about it", secret)
		}
	}
}

func TestLookupNotFound(t *testing.T) {
	h, _, _, _ := lookupServer(t, 1000)
	// An unknown code answers the same bytes as any other unknown code.
	a := lookupGet(h, "/v1/lookup/NOPE-1", "127.0.0.1")
	b := lookupGet(h, "/v1/lookup/000.00.31.H26-240304-0001", "127.0.0.1")
	if a.Code != http.StatusNotFound || b.Code != http.StatusNotFound || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) {
		t.Errorf("unknown codes answer differently:\n%d %s\n%d %s", a.Code, a.Body, b.Code, b.Body)
	}
	if strings.Contains(b.Body.String(), "000.00.31") {
		t.Errorf("the answer repeats the code: %s", b.Body)
	}
	errorAnswer(t, a, http.StatusNotFound, hoso.ENOTFOUND)
	d := errorAnswer(t, lookupGet(h, "/v1/lookup/-dash-first", "127.0.0.1"), http.StatusBadRequest, hoso.EINVALID)
	if d.Field != "code" {
		t.Errorf("bad code: field %q", d.Field)
	}
	errorAnswer(t, lookupGet(h, "/v1/lookup/L-PAUSED?x=1", "127.0.0.1"), http.StatusBadRequest, hoso.EINVALID)

	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{"/tra-cuu", http.StatusOK, `name="ma"`},
		{"/tra-cuu?ma=NOPE-1", http.StatusNotFound, "Không tìm thấy hồ sơ"},
		{"/tra-cuu?ma=", http.StatusBadRequest, "Hãy nhập mã hồ sơ"},
		{"/tra-cuu?ma=a%20b", http.StatusBadRequest, "Mã hồ sơ không hợp lệ"},
		{"/tra-cuu?ma=+L-PAUSED+", http.StatusOK, "Chờ bổ sung hồ sơ"}, // spaces copied with the code
	} {
		w := lookupGet(h, tc.path, "127.0.0.1")
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.says) {
			t.Errorf("%s: %d, want %d saying %q:\n%s", tc.path, w.Code, tc.status, tc.says, w.Body)
		}
	}
}

// An address that looks codes up one after another gets 429 once its
// burst is spent, the JSON endpoint and the page alike, and may go on once
// time has passed; another address is not held back. The clock stands
// still, so no lookup is refilled behind the test's back.
func TestLookupRateLimit(t *testing.T) {
	const burst = 5
	h, clock, _, _ := lookupServer(t, burst)
	for i := range burst {
		path := "/v1/lookup/NOPE-" + string(rune('A'+i)) // misses count as much as hits
		if i%2 == 1 {
			path = "/tra-cuu?ma=L-PAUSED"
		}
		if w := lookupGet(h, path, "127.0.0.1"); w.Code == http.StatusTooManyRequests {
			t.Fatalf("lookup %d of the burst refused: %s", i+1, w.Body)
		}
	}
	w := lookupGet(h, "/v1/lookup/L-PAUSED", "127.0.0.1")
	errorAnswer(t, w, http.StatusTooManyRequests, handlers.ETOOMANYREQUESTS)
	if got := w.Header().Get("Retry-After"); got != "6" {
		t.Errorf("Retry-After %q, want 6", got)
	}
	pw := lookupGet(h, "/tra-cuu?ma=L-PAUSED", "127.0.0.1")
	if pw.Code != http.StatusTooManyRequests || pw.Header().Get("Retry-After") != "6" ||
		!strings.Contains(pw.Body.String(), "quá nhiều lần") || strings.Contains(pw.Body.String(), "Chờ bổ sung hồ sơ") {
		t.Errorf("page past the burst: %d Retry-After %q\n%s", pw.Code, pw.Header().Get("Retry-After"), pw.Body)
	}
	// The form alone and a code that cannot be one look nothing up.
	if w := lookupGet(h, "/tra-cuu", "127.0.0.1"); w.Code != http.StatusOK {
		t.Errorf("the form past the burst: %d", w.Code)
	}
	if w := lookupGet(h, "/v1/lookup/L-PAUSED", "127.0.0.2"); w.Code != http.StatusOK {
		t.Errorf("another address: %d %s", w.Code, w.Body)
	}

	clock.advance(6 * time.Second)
	if w := lookupGet(h, "/v1/lookup/L-PAUSED", "127.0.0.1"); w.Code != http.StatusOK {
		t.Errorf("6 s later: %d %s", w.Code, w.Body)
	}
	if w := lookupGet(h, "/v1/lookup/L-PAUSED", "127.0.0.1"); w.Code != http.StatusTooManyRequests {
		t.Errorf("the one lookup 6 s gave back is spent, yet: %d", w.Code)
	}
}
