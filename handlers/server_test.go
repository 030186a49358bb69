package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/handlers"
)

// newTestServer returns a server over a fresh fake ledger, logging into logs.
func newTestServer(t *testing.T) (*handlers.Server, *fakeLedger, *syncBuffer) {
	t.Helper()
	ledger := newFakeLedger()
	logs := &syncBuffer{}
	s := handlers.NewServer()
	s.Events, s.Dossiers = ledger, ledger
	authorize(t, s)
	s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return s, ledger, logs
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve sends one request through the whole router.
func serve(t *testing.T, h http.Handler, method, path, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", authHeader(method, path))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// decode checks that w is a JSON answer with the status and decodes it.
func decode[T any](t *testing.T, w *httptest.ResponseRecorder, status int) T {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var v T
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return v
}

// errorAnswer checks that w is the JSON error body with status and code.
func errorAnswer(t *testing.T, w *httptest.ResponseRecorder, status int, code string) hoso.ErrorDetail {
	t.Helper()
	body := decode[hoso.ErrorBody](t, w, status)
	if body.Error.Code != code {
		t.Fatalf("error code = %q, want %q (message %q)", body.Error.Code, code, body.Error.Message)
	}
	if body.Error.Message == "" {
		t.Fatal("error message is empty")
	}
	return body.Error
}

func TestRoutesAnswerJSON(t *testing.T) {
	s, _, _ := newTestServer(t)
	tests := []struct {
		name, method, path string
		status             int
		code               string
		allow              string
	}{
		{"unknown route", "GET", "/v1/nothing", 404, hoso.ENOTFOUND, ""},
		{"root", "GET", "/", 404, hoso.ENOTFOUND, ""},
		{"wrong method on events", "GET", "/v1/events", 405, handlers.EMETHODNOTALLOWED, "POST"},
		{"wrong method on dossier", "DELETE", "/v1/dossiers/D1", 405, handlers.EMETHODNOTALLOWED, "GET, HEAD"},
		{"wrong method on healthz", "POST", "/healthz", 405, handlers.EMETHODNOTALLOWED, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, s.Handler(), tt.method, tt.path, "", "")
			d := errorAnswer(t, w, tt.status, tt.code)
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if !strings.Contains(d.Message, tt.path) {
				t.Errorf("message %q does not name the path %s", d.Message, tt.path)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	s, _, _ := newTestServer(t)
	got := decode[map[string]string](t, serve(t, s.Handler(), "GET", "/healthz", "", ""), 200)
	if got["status"] != "ok" {
		t.Fatalf("healthz = %v", got)
	}
}

func TestReadyz(t *testing.T) {
	t.Run("nil func is ready", func(t *testing.T) {
		s, _, _ := newTestServer(t)
		got := decode[map[string]string](t, serve(t, s.Handler(), "GET", "/readyz", "", ""), 200)
		if got["status"] != "ready" {
			t.Fatalf("readyz = %v", got)
		}
	})
	t.Run("nil error is ready", func(t *testing.T) {
		s, _, _ := newTestServer(t)
		s.Ready = func(context.Context) error { return nil }
		got := decode[map[string]string](t, serve(t, s.Handler(), "GET", "/readyz", "", ""), 200)
		if got["status"] != "ready" {
			t.Fatalf("readyz = %v", got)
		}
	})
	t.Run("internal error is 503 without the cause", func(t *testing.T) {
		s, _, logs := newTestServer(t)
		s.Ready = func(context.Context) error { return errors.New("sqlite: /secret/path locked") }
		d := errorAnswer(t, serve(t, s.Handler(), "GET", "/readyz", "", ""), 503, handlers.EUNAVAILABLE)
		if strings.Contains(d.Message, "secret") {
			t.Errorf("message leaks the cause: %q", d.Message)
		}
		if !strings.Contains(logs.String(), "/secret/path locked") {
			t.Errorf("cause not logged; logs:\n%s", logs)
		}
	})
	t.Run("domain error is 503 with its message", func(t *testing.T) {
		s, _, _ := newTestServer(t)
		s.Ready = func(context.Context) error {
			return hoso.Errorf(handlers.EUNAVAILABLE, "projection is 12 events behind the stream")
		}
		d := errorAnswer(t, serve(t, s.Handler(), "GET", "/readyz", "", ""), 503, handlers.EUNAVAILABLE)
		if !strings.Contains(d.Message, "12 events behind") {
			t.Errorf("message = %q, want the reason", d.Message)
		}
	})
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{hoso.Errorf(hoso.EINVALID, "x"), 400},
		{hoso.Errorf(hoso.EUNAUTHORIZED, "x"), 401},
		{hoso.Errorf(hoso.ENOTFOUND, "x"), 404},
		{hoso.Errorf(handlers.EMETHODNOTALLOWED, "x"), 405},
		{hoso.Errorf(hoso.ECONFLICT, "x"), 409},
		{hoso.Errorf(hoso.ETOOLARGE, "x"), 413},
		{hoso.Errorf(hoso.EUNSUPPORTED, "x"), 415},
		{hoso.Errorf(hoso.EINTERNAL, "x"), 500},
		{hoso.Errorf(handlers.EUNAVAILABLE, "x"), 503},
		{errors.New("disk full"), 500},
		{errors.Join(errors.New("append"), hoso.FieldErrorf("at", "x")), 400},
	}
	for _, tt := range tests {
		if got := handlers.ErrorStatus(tt.err); got != tt.want {
			t.Errorf("ErrorStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestInternalErrorIsLoggedNotLeaked(t *testing.T) {
	s, ledger, logs := newTestServer(t)
	ledger.failWith = errors.New("nats: stream HOSO_EVENTS unavailable at 10.0.0.7")
	d := errorAnswer(t, serve(t, s.Handler(), "GET", "/v1/dossiers/D1", "", ""), 500, hoso.EINTERNAL)
	if strings.Contains(d.Message, "10.0.0.7") {
		t.Errorf("message leaks the cause: %q", d.Message)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "10.0.0.7") {
		t.Errorf("internal error not logged at error level; logs:\n%s", logs)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	s, _, logs := newTestServer(t)
	s.Handle("GET /boom", handlers.Readers, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("kaboom") }))
	errorAnswer(t, serve(t, s.Handler(), "GET", "/boom", "", ""), 500, hoso.EINTERNAL)
	if !strings.Contains(logs.String(), "kaboom") {
		t.Errorf("panic not logged; logs:\n%s", logs)
	}
	// The server still serves after a panic.
	decode[map[string]string](t, serve(t, s.Handler(), "GET", "/healthz", "", ""), 200)
}

func TestObserveAndRequestLog(t *testing.T) {
	s, _, logs := newTestServer(t)
	type observation struct {
		route  string
		status int
	}
	var got []observation
	s.Observe = func(route string, status int, d time.Duration) {
		if d < 0 {
			t.Errorf("negative duration %v", d)
		}
		got = append(got, observation{route, status})
	}
	s.Handle("GET /v1/extra", handlers.Readers, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	serve(t, s.Handler(), "GET", "/healthz", "", "")
	serve(t, s.Handler(), "GET", "/v1/dossiers/NOPE", "", "")
	serve(t, s.Handler(), "GET", "/v1/extra", "", "")
	serve(t, s.Handler(), "GET", "/v1/missing", "", "")
	want := []observation{
		{"GET /healthz", 200},
		{"GET /v1/dossiers/{code}", 404},
		{"GET /v1/extra", 204},
		{"", 404},
	}
	if len(got) != len(want) {
		t.Fatalf("observations = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("observation %d = %v, want %v", i, got[i], want[i])
		}
	}
	if !strings.Contains(logs.String(), `route="GET /v1/dossiers/{code}" status=404`) {
		t.Errorf("request not logged with route and status; logs:\n%s", logs)
	}
}

func TestOpenClose(t *testing.T) {
	s, _, _ := newTestServer(t)
	s.Addr = "127.0.0.1:0"
	if s.URL() != "" {
		t.Fatalf("URL before Open = %q, want empty", s.URL())
	}

	// A handler that holds its request until released shows that Close drains.
	entered, release := make(chan struct{}), make(chan struct{})
	s.Handle("GET /slow", handlers.Public(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	url := s.URL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("URL = %q, want http://127.0.0.1:<port>", url)
	}
	if err := s.Open(); err == nil {
		t.Error("second Open succeeded")
	}

	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("GET /healthz = %d %s", resp.StatusCode, body)
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the in-flight request finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if got := <-slow; got != "done" {
		t.Errorf("in-flight request answered %q, want done", got)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestCloseTimesOut(t *testing.T) {
	s, _, _ := newTestServer(t)
	s.Addr = "127.0.0.1:0"
	entered := make(chan struct{})
	s.Handle("GET /stuck", handlers.Public(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // only a forced close ends it
	}))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := http.Get(s.URL() + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want a deadline error", err)
	}
}

// TestAuthFailuresAreLimited: past its burst of failed tokens an address
// gets 429 with Retry-After, even with a good token, until it slows down;
// another address is not held back.
func TestAuthFailuresAreLimited(t *testing.T) {
	s, _, _ := newTestServer(t)
	s.AuthFailureBurst = 3
	h := s.Handler()
	do := func(addr, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/dossiers/D1", nil)
		req.RemoteAddr = addr + ":40000"
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for i := range 3 {
		if w := do("192.0.2.1", "tok-nobody"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, w.Code, w.Body)
		}
	}
	for _, token := range []string{"tok-nobody", "tok-" + nationalAuditor.Name} {
		w := do("192.0.2.1", token)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "too many failed authentications") {
			t.Fatalf("past the burst, %s: %d %v %s, want 429 with Retry-After", token, w.Code, w.Header(), w.Body)
		}
	}
	if w := do("192.0.2.2", "tok-nobody"); w.Code != http.StatusUnauthorized {
		t.Fatalf("another address: %d %s, want 401", w.Code, w.Body)
	}
}
