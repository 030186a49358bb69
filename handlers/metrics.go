package handlers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

// MetricsServer serves GET /metrics alone, on an address of its own, so
// that Prometheus scrapes where the API is not served and the API's
// address serves no metrics. Set the fields, then Open; Close ends it.
type MetricsServer struct {
	Addr string
	// Handler answers GET /metrics; every other request is 404.
	Handler http.Handler
	// TLSConfig, when set, makes Open serve HTTPS only, with its certificate.
	TLSConfig *tls.Config
	Logger    *slog.Logger

	mu       sync.Mutex // guards the fields below, set by Open and read by Close and URL
	server   *http.Server
	listener net.Listener
	serveErr error
	wg       sync.WaitGroup
}

// Open listens on Addr and serves in a goroutine that Close waits for.
func (s *MetricsServer) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return errors.New("metrics server already open")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Handler)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serve := srv.Serve
	if s.TLSConfig != nil {
		srv.TLSConfig = s.TLSConfig.Clone()
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	}
	s.server, s.listener = srv, ln
	s.wg.Go(func() {
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	})
	return nil
}

// Close stops accepting connections and waits for scrapes in flight until
// ctx ends, then cuts them.
func (s *MetricsServer) Close(ctx context.Context) error {
	s.mu.Lock()
	srv := s.server
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("metrics shutdown: %w", err), srv.Close())
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.serveErr)
}

// URL returns the base URL of the open server, such as
// http://127.0.0.1:9090, or "" before Open.
func (s *MetricsServer) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return listenerURL(s.listener, s.TLSConfig != nil)
}
