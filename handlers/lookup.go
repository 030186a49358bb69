package handlers

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Lookups an address may make: a burst, then one every lookupEvery; past
// that it gets 429 with Retry-After until it slows down. A citizen looks
// a dossier up a few times; someone trying code after code (codes are a
// unit, a date and a sequence number, easy to guess) is held to ten a
// minute.
const (
	DefaultLookupBurst = 10
	lookupEvery        = 6 * time.Second
)

// Lookup is the citizens' lookup: GET /v1/lookup/{code} (JSON) and the
// page GET /tra-cuu, public on purpose. Whoever holds a dossier's code
// (it is on the receipt the one-stop desk hands out) learns its state,
// received date, procedure, due date, whether it is on time, and the unit
// now holding it; never a reason, a submitter or the events.
type Lookup struct {
	// Dossiers reads a dossier without a principal (the service the
	// scoped one wraps): a citizen has no scope.
	Dossiers hoso.DossierService
	// Registry names the unit holding the dossier.
	Registry *hoso.Units
	// Now is the clock of the deadline state and of the rate limit; nil
	// is time.Now.
	Now hoso.Clock
	// Burst is the lookups an address may make at once (0:
	// DefaultLookupBurst); then one every 6 seconds.
	Burst int
}

// MountLookup registers the citizens' lookup. Its style sheet is the
// dashboard's (/static/), which MountDashboard serves.
func (s *Server) MountLookup(l Lookup) error {
	if l.Dossiers == nil || l.Registry == nil {
		return errors.New("lookup: the dossier service and the units registry are required")
	}
	if l.Burst < 0 {
		return fmt.Errorf("lookup: burst %d: want 0 (the default) or more", l.Burst)
	}
	page, err := template.New("lookup.html").Funcs(templateFuncs).ParseFS(dashboardFS, "dashboard/lookup.html")
	if err != nil {
		return fmt.Errorf("lookup template: %w", err)
	}
	lk := &lookup{Lookup: l, server: s, page: page, limiter: addrLimiter{every: lookupEvery}}
	lk.burst = cmp.Or(l.Burst, DefaultLookupBurst)
	// Public on purpose (issue: citizens have no token): a dossier's holder
	// asks by the code on the receipt. The answer is the few facts printed
	// for the holder anyway, and each address is rate-limited so that codes
	// cannot be enumerated (docs/security.md).
	s.Handle("GET /v1/lookup/{code}", Public(), s.read(lk.handleJSON))
	s.Handle("GET /tra-cuu", Public(), s.read(lk.handlePage))
	return nil
}

// lookup is a mounted Lookup.
type lookup struct {
	Lookup
	server  *Server
	page    *template.Template
	limiter addrLimiter
	burst   int
}

func (l *lookup) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

// lookupAnswer is all the lookup tells about a dossier. Nothing else of
// the dossier may be added here: reasons can hold personal data, and who
// handled it is the administration's business (docs/security.md).
type lookupAnswer struct {
	Code         string              `json:"code"`
	Procedure    string              `json:"procedure"`
	ReceivedAt   time.Time           `json:"received_at"`
	State        hoso.State          `json:"state"`
	StateName    string              `json:"state_name"`
	Due          time.Time           `json:"due"`
	Deadline     hoso.Classification `json:"deadline,omitempty"`
	DeadlineName string              `json:"deadline_name,omitempty"`
	Unit         string              `json:"unit"`
	UnitName     string              `json:"unit_name"`
}

// errLookupNotFound is the one answer for a code with no dossier: the same
// bytes whatever the reason, so that it tells nothing but that.
var errLookupNotFound = hoso.Errorf(hoso.ENOTFOUND, "no dossier has this code")

// find looks code up for addr. The error is EINVALID for a code that
// cannot be one, ETOOMANYREQUESTS (wait says how long) past the rate,
// errLookupNotFound, or a fault of the service.
func (l *lookup) find(r *http.Request, code string) (ans *lookupAnswer, wait time.Duration, err error) {
	if !hoso.ValidDossierCode(code) {
		return nil, 0, hoso.FieldErrorf("code", "%q is not a dossier code (1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)", code)
	}
	now := l.now()
	if wait := l.limiter.take(clientAddr(r), now, l.burst); wait > 0 {
		return nil, wait, hoso.Errorf(ETOOMANYREQUESTS, "too many lookups from this address; retry in %d s", retrySeconds(wait))
	}
	view, err := l.Dossiers.FindDossier(r.Context(), code)
	switch {
	case hoso.ErrorCode(err) == hoso.ENOTFOUND || err == nil && (view == nil || view.Dossier == nil):
		return nil, 0, errLookupNotFound
	case err != nil:
		return nil, 0, err
	}
	d := view.Dossier
	class := d.Classify(now)
	return &lookupAnswer{
		Code: d.Code, Procedure: d.Procedure, ReceivedAt: d.ReceivedAt.In(hoso.VietnamZone),
		State: d.State, StateName: label(lookupStateNames, d.State),
		Due: d.Due.In(hoso.VietnamZone), Deadline: class, DeadlineName: lookupDeadlineNames[class],
		Unit: d.Owner, UnitName: l.unitName(d.Owner, d.LastAt, now),
	}, 0, nil
}

// unitName is the unit's name as it stood when the dossier was last
// touched (codes are reused), else as it stands now, else its last name.
func (l *lookup) unitName(code string, at, now time.Time) string {
	for _, t := range []time.Time{at, now} {
		if u, ok := l.Registry.At(code, t); ok {
			return u.Name
		}
	}
	if h := l.Registry.History(code); len(h) > 0 {
		return h[len(h)-1].Name
	}
	return code
}

// handleJSON serves GET /v1/lookup/{code}.
func (l *lookup) handleJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, err := queryParams(r); err != nil {
		l.server.Error(w, r, err)
		return
	}
	ans, wait, err := l.find(r, r.PathValue("code"))
	if err != nil {
		if wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(wait)))
		}
		l.server.Error(w, r, err)
		return
	}
	l.server.writeJSON(w, r, http.StatusOK, ans)
}

// lookupPage is what the page shows.
type lookupPage struct {
	Code    string
	Dossier *lookupAnswer
	Msg     string // why there is no answer
}

// handlePage serves GET /tra-cuu: the form, and with ?ma=CODE the answer.
func (l *lookup) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	code := strings.TrimSpace(q.Get("ma"))
	p := lookupPage{Code: code}
	if !q.Has("ma") {
		l.render(w, r, http.StatusOK, p)
		return
	}
	if code == "" {
		p.Msg = "Hãy nhập mã hồ sơ ghi trên giấy tiếp nhận."
		l.render(w, r, http.StatusBadRequest, p)
		return
	}
	ans, wait, err := l.find(r, code)
	status := http.StatusOK
	if err != nil {
		status = ErrorStatus(err)
		switch status {
		case http.StatusBadRequest:
			p.Msg = "Mã hồ sơ không hợp lệ: mã gồm chữ, số và các dấu . _ - (tối đa 64 ký tự), như trên giấy tiếp nhận."
		case http.StatusNotFound:
			p.Msg = "Không tìm thấy hồ sơ có mã này. Hãy kiểm tra lại mã trên giấy tiếp nhận."
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(wait)))
			p.Msg = fmt.Sprintf("Bạn đã tra cứu quá nhiều lần. Hãy thử lại sau %d giây.", retrySeconds(wait))
		default:
			if status >= http.StatusInternalServerError && status != http.StatusServiceUnavailable {
				l.server.logger().LogAttrs(r.Context(), slog.LevelError, "lookup failed",
					slog.String("path", r.URL.Path), slog.Any("err", err))
			}
			p.Msg = "Hệ thống đang bận, chưa tra cứu được. Hãy thử lại sau."
		}
	}
	p.Dossier = ans
	l.render(w, r, status, p)
}

// render executes the page into a buffer first, so that a failing template
// answers a plain 500 rather than half a page.
func (l *lookup) render(w http.ResponseWriter, r *http.Request, status int, p lookupPage) {
	var buf bytes.Buffer
	if err := l.page.Execute(&buf, p); err != nil {
		l.server.logger().LogAttrs(r.Context(), slog.LevelError, "render lookup page",
			slog.String("path", r.URL.Path), slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeHTMLBody(w, status, buf.Bytes())
}

// retrySeconds is wait in whole seconds, rounded up, at least 1.
func retrySeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// The states and deadline states as a citizen reads them.
var lookupStateNames = map[hoso.State]string{
	hoso.StateProcessing:         "Đang xử lý",
	hoso.StateAwaitingSupplement: "Chờ bổ sung hồ sơ",
	hoso.StateResolved:           "Đã có kết quả",
	hoso.StateReturned:           "Đã trả kết quả",
	hoso.StateWithdrawn:          "Đã rút hồ sơ",
}

var lookupDeadlineNames = map[hoso.Classification]string{
	hoso.ClassInDeadline: "Trong hạn",
	hoso.ClassOverdue:    "Quá hạn",
	hoso.ClassPaused:     "Tạm dừng tính hạn, chờ bổ sung",
	hoso.ClassEarly:      "Có kết quả trước hạn",
	hoso.ClassOnTime:     "Có kết quả đúng hạn",
	hoso.ClassLate:       "Có kết quả quá hạn",
}
