package handlers

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Defaults of a new Server.
const (
	DefaultAddr         = "127.0.0.1:8080"
	DefaultMaxBodyBytes = 16 << 20
)

// Timeouts of the http.Server: a slow client cannot hold a connection open
// forever, while a large batch still has time to be read and answered.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 2 * time.Minute
	WriteTimeout      = 2 * time.Minute
	IdleTimeout       = 2 * time.Minute
)

// Server is the HTTP door of the ledger. Create it with NewServer, set the
// fields, then Open it, or mount Handler in a test server.
type Server struct {
	Addr     string // listen address; "127.0.0.1:0" picks a free port
	Events   hoso.EventService
	Dossiers hoso.DossierService
	Logger   *slog.Logger
	// Proofs serves checkpoints and proofs; nil answers 503 on their routes.
	Proofs hoso.ProofService

	// MaxBodyBytes bounds a request body; past it the answer is 413.
	MaxBodyBytes int64

	// Ready reports whether the server can serve reads (/readyz): nil means
	// ready. A nil func is always ready.
	Ready func(context.Context) error

	// Observe, if set, is told of every finished request: its route pattern
	// ("" when no route matched), status and duration. Metrics plug in here.
	Observe func(route string, status int, d time.Duration)

	// Tokens authenticates every route that is not public; nil refuses
	// them all (503). Units is the registry principals' scopes are checked
	// against; Now its clock (nil: time.Now).
	Tokens hoso.TokenService
	Units  *hoso.Units
	Now    hoso.Clock
	// TLS says the server is reached over HTTPS: session cookies are then
	// Secure.
	TLS bool
	// TLSConfig, when set, makes Open serve HTTPS with its certificate,
	// and nothing over plain HTTP.
	TLSConfig *tls.Config
	// AuthFailureBurst is the failed authentications an address may make
	// before it is slowed (0: DefaultAuthFailureBurst).
	AuthFailureBurst int

	mux *http.ServeMux
	// access is each route pattern's rule, set with the route by Handle.
	access   map[string]Access
	failures addrLimiter
	// signIn is set by MountSignIn: dashboard pages then send a browser
	// without a session to the sign-in page instead of answering 401.
	signIn bool
	// ingestOnly is set by MountIngestOnly, before the server serves.
	ingestOnly bool

	mu       sync.Mutex // guards the fields below, set by Open and read by Close and URL
	server   *http.Server
	listener net.Listener
	cancel   context.CancelFunc // cancels every request's context on a forced close
	serveErr error
	wg       sync.WaitGroup
}

// NewServer returns a Server with the API routes registered and the defaults set.
func NewServer() *Server {
	s := &Server{
		Addr:         DefaultAddr,
		Logger:       slog.New(slog.DiscardHandler),
		MaxBodyBytes: DefaultMaxBodyBytes,
		mux:          http.NewServeMux(),
		access:       map[string]Access{},
		failures:     addrLimiter{every: failureEvery},
	}
	auditors := Allow(hoso.RoleAuditor)
	s.Handle("POST /v1/events", Allow(hoso.RoleDesk), http.HandlerFunc(s.handlePostEvents))
	s.Handle("GET /v1/dossiers/{code}", Readers, s.read(s.handleGetDossier))
	// Checkpoints are public on purpose: anyone may hold the ledger to
	// what it signed (docs/security.md).
	s.Handle("GET /v1/checkpoint", Public(), s.read(s.handleCheckpoint))
	s.Handle("GET /v1/checkpoint/key", Public(), s.read(s.handleCheckpointKey))
	s.Handle("GET /v1/dossiers/{code}/proof", auditors, s.read(s.handleDossierProof))
	s.Handle("GET /v1/consistency", auditors, s.read(s.handleConsistency))
	s.Handle("GET /healthz", Public(), http.HandlerFunc(s.handleHealthz))
	s.Handle("GET /readyz", Public(), http.HandlerFunc(s.handleReadyz))
	s.mountTokens()
	return s
}

// Handle registers h for pattern (a Go 1.22 ServeMux pattern such as
// "GET /v1/report") with the rule of who may use it. Its requests go
// through the same authentication, logging, recovery and observation as
// the API's. Like ServeMux.Handle it panics on a conflict.
func (s *Server) Handle(pattern string, access Access, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.access[pattern] = access
}

// Routes returns every route pattern with its rule, for the tests and the
// docs that list them.
func (s *Server) Routes() map[string]Access {
	return maps.Clone(s.access)
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Handler returns the whole router with its middleware.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// Open listens on Addr and serves in a goroutine that Close waits for.
func (s *Server) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return errors.New("http server already open")
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.listener, s.cancel = ln, cancel
	s.server = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	srv, serve := s.server, s.server.Serve
	if s.TLSConfig != nil {
		srv.TLSConfig = s.TLSConfig.Clone()
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	}
	s.wg.Go(func() {
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.logger().Error("http server stopped", "err", err)
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	})
	return nil
}

// Close stops accepting connections and waits for in-flight requests to
// finish. If ctx ends first, the remaining connections are cut and their
// requests' contexts canceled.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	srv, cancel := s.server, s.cancel
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		cancel()
		err = errors.Join(fmt.Errorf("http shutdown: %w", err), srv.Close())
	}
	s.wg.Wait()
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.serveErr)
}

// URL returns the base URL of the open server, such as http://127.0.0.1:8080
// (https with TLSConfig), or "" before Open. An unspecified listen host is
// reached on loopback.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return listenerURL(s.listener, s.TLSConfig != nil)
}

// listenerURL is the base URL that reaches ln.
func listenerURL(ln net.Listener, https bool) string {
	scheme := "http://"
	if https {
		scheme = "https://"
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return scheme + ln.Addr().String()
	}
	host := "127.0.0.1"
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return scheme + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) maxBodyBytes() int64 {
	if s.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return s.MaxBodyBytes
}

// serveHTTP is the middleware around the router: it recovers panics as 500,
// logs each request at debug and reports it to Observe.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if machineOnly(r) {
		setTransportHeaders(w.Header(), s.TLS)
	} else {
		setSecurityHeaders(w.Header(), s.TLS)
	}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		v := recover()
		if v != nil && v != http.ErrAbortHandler {
			s.logger().LogAttrs(r.Context(), slog.LevelError, "http handler panicked",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("route", r.Pattern), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			if !rec.wroteHeader {
				s.writeJSON(rec, r, http.StatusInternalServerError, hoso.NewErrorBody(hoso.Errorf(hoso.EINTERNAL, "internal error")))
				v = nil
			} else {
				// Half a response is already out: cut the connection so the
				// client cannot mistake it for a whole one.
				v = http.ErrAbortHandler
			}
		}
		s.finish(r, rec, time.Since(start))
		if v != nil {
			panic(v)
		}
	}()
	s.route(rec, r)
}

// handleHealthz says the process is up; it checks nothing else, so that a
// slow dependency never gets a live server restarted.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz says whether the server can serve reads. The cause of a
// refusal is logged, not sent, unless it is an *hoso.Error meant for clients.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			s.logger().WarnContext(r.Context(), "not ready", "err", err)
			msg := "not ready"
			if hoso.ErrorCode(err) != hoso.EINTERNAL {
				msg += ": " + hoso.ErrorMessage(err)
			}
			s.Error(w, r, hoso.Errorf(EUNAVAILABLE, "%s", msg))
			return
		}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// route dispatches to the mux, but answers unknown routes and wrong methods
// itself so that those answers are JSON too.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.routeError(w, r, h)
		return
	}
	r.Pattern = pattern // for the log and Observe, whoever answers
	authorized := s.authorize(w, r, pattern)
	if authorized == nil {
		return
	}
	s.mux.ServeHTTP(w, authorized)
}

// routeError runs the mux's own plain-text 404/405 answer into a scratch
// writer, to learn its status and Allow header, and answers JSON instead.
func (s *Server) routeError(w http.ResponseWriter, r *http.Request, muxAnswer http.Handler) {
	scratch := &scratchWriter{header: http.Header{}}
	muxAnswer.ServeHTTP(scratch, r)
	switch scratch.status {
	case http.StatusMethodNotAllowed:
		allow := scratch.header.Get("Allow")
		w.Header().Set("Allow", allow)
		s.Error(w, r, hoso.Errorf(EMETHODNOTALLOWED, "method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	default:
		s.Error(w, r, hoso.Errorf(hoso.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) finish(r *http.Request, rec *statusRecorder, d time.Duration) {
	status := rec.status
	if !rec.wroteHeader {
		status = http.StatusOK // net/http's implicit status for a handler that wrote nothing
	}
	if log := s.logger(); log.Enabled(r.Context(), slog.LevelDebug) {
		log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("route", r.Pattern),
			slog.Int("status", status), slog.Duration("duration", d), slog.Int64("bytes", rec.bytes))
	}
	if s.Observe != nil {
		s.Observe(r.Pattern, status, d)
	}
}

// writeJSON answers v as JSON with status. It encodes before writing the
// header so that an encoding failure can still become a 500.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		s.logger().LogAttrs(r.Context(), slog.LevelError, "encode JSON answer",
			slog.String("method", r.Method), slog.String("route", r.Pattern), slog.Any("err", err))
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(hoso.NewErrorBody(hoso.Errorf(hoso.EINTERNAL, "internal error")))
		status = http.StatusInternalServerError
	}
	writeJSONBody(w, status, buf.Bytes())
}

// writeJSONBody answers body, JSON already encoded and ending in a newline
// as json.Encoder ends it, with status.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // a failed write means the client left; nothing to answer
}

// statusRecorder remembers the status and size of an answer.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
}

func (w *statusRecorder) WriteHeader(status int) {
	if !w.wroteHeader && status >= 200 {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// scratchWriter collects an answer that is never sent.
type scratchWriter struct {
	header http.Header
	status int
}

func (w *scratchWriter) Header() http.Header { return w.header }

func (w *scratchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *scratchWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
