package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// IngestSubject is the NATS request subject of the ingest service.
const IngestSubject = "hoso.ingest"

// ServiceName is the ingest service's name for `nats micro` tools.
const ServiceName = "hoso"

// IngestService is the NATS door: the micro service "hoso", taking the same
// payloads as POST /v1/events and giving the same answers, at two
// endpoints. "desk" is hoso.ingest.<name>, where only the desk principal
// of that name may publish (DeskCallout makes it a NATS user), so the
// subject says who sends. "default" is hoso.ingest, for the shared desk
// role, where a request names its desk by a bearer token in its
// Authorization header. `nats micro ls` and `nats micro stats hoso` see
// both.
type IngestService struct {
	Events hoso.EventService
	// Tokens tells each request's principal, by its subject's desk name or
	// by its bearer token: its scope bounds what it may submit and its
	// name is each event's `by`. Every `hoso serve` sets it; nil takes
	// requests as the ledger's own, for tests of the door alone.
	Tokens hoso.TokenService
	// Version is announced to `nats micro info`.
	Version string
	// MaxConcurrency bounds requests handled at once.
	MaxConcurrency int

	svc    micro.Service
	nc     *nats.Conn
	ctx    context.Context
	cancel context.CancelFunc
	// workers counts the goroutines that serve requests, started as
	// requests come and kept until Close: a new goroutine per request
	// would grow its stack anew each time through the ingest path.
	workers  chan struct{}
	requests chan micro.Request
	quit     chan struct{}
	wg       sync.WaitGroup
	// closing, set by Close under mu, stops new workers: micro drains the
	// subscription after Stop, so requests may still come while Close
	// waits for the workers, and a WaitGroup must not grow then.
	mu      sync.Mutex
	closing bool
	// errors counts the requests answered with an error (respond).
	errors atomic.Int64
}

// Open registers the service on nc.
func (s *IngestService) Open(nc *nats.Conn) error {
	if s.MaxConcurrency <= 0 {
		s.MaxConcurrency = 256
	}
	if s.Version == "" {
		s.Version = "0.1.0"
	}
	s.nc = nc
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.workers = make(chan struct{}, s.MaxConcurrency)
	s.requests = make(chan micro.Request)
	s.quit = make(chan struct{})
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     s.Version,
		Description: "hoso ledger: ingest dossier events",
		// Both endpoints' errors together: see respond.
		StatsHandler: func(*micro.Endpoint) any { return map[string]int64{"errors": s.errors.Load()} },
		Endpoint: &micro.EndpointConfig{
			Subject:  IngestSubject,
			Handler:  micro.HandlerFunc(s.handle),
			Metadata: map[string]string{"payload": "one event object, a JSON array of events, or NDJSON (Content-Type: application/x-ndjson)"},
		},
	})
	if err != nil {
		return fmt.Errorf("add NATS service %s: %w", IngestSubject, err)
	}
	s.svc = svc
	if err := svc.AddEndpoint("desk", micro.HandlerFunc(s.handle), micro.WithEndpointSubject(DeskSubject("*")),
		micro.WithEndpointMetadata(map[string]string{"payload": "as hoso.ingest; the subject's last token is the desk's principal name, the only NATS user that may publish there"})); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("add NATS endpoint %s: %w", DeskSubject("*"), err)
	}
	// Subscriptions reach the server asynchronously: flush so that once
	// Open returns, a desk system's request finds the service.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("add NATS service %s: %w", IngestSubject, err)
	}
	return nil
}

// handle hands each request to a worker goroutine, since micro calls
// handlers one at a time per subscription: an idle one, else a new one up
// to MaxConcurrency, else the first to be free.
func (s *IngestService) handle(req micro.Request) {
	select {
	case s.requests <- req:
		return
	default:
	}
	select {
	case s.requests <- req:
		return
	case s.workers <- struct{}{}:
		if s.startWorker(req) {
			return
		}
		<-s.workers
	case <-s.quit:
	}
	s.respondStatus(req, http.StatusServiceUnavailable, hoso.NewErrorBody(hoso.Errorf(hoso.EINTERNAL, "service stopping")))
}

// startWorker starts a worker serving req, unless Close has begun.
func (s *IngestService) startWorker(req micro.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Go(func() { s.work(req) })
	return true
}

// work serves req, then every request handed to it until Close.
func (s *IngestService) work(req micro.Request) {
	for {
		s.serve(req)
		select {
		case req = <-s.requests:
		case <-s.quit:
			return
		}
	}
}

func (s *IngestService) serve(req micro.Request) {
	ndjson := strings.HasPrefix(req.Headers().Get("Content-Type"), "application/x-ndjson")
	ctx := s.ctx
	if s.Tokens != nil {
		p, err := s.authenticate(req)
		if err != nil {
			s.respondError(req, err)
			return
		}
		ctx = hoso.NewContextWithPrincipal(ctx, p)
	}
	p, err := hoso.ParsePayload(req.Data(), ndjson)
	if err != nil {
		s.respondError(req, err)
		return
	}
	results := hoso.Ingest(ctx, s.Events, p)
	if p.Batch {
		s.respond(req, nil, hoso.AppendBatchAnswer(make([]byte, 0, 96*len(results)+16), results))
		return
	}
	if results[0].Err != nil {
		s.respondError(req, results[0].Err)
		return
	}
	s.respond(req, nil, results[0].Result.AppendJSON(make([]byte, 0, 128)))
}

// authenticate returns the desk that sends req: the one its subject names,
// else the one whose token it carries.
func (s *IngestService) authenticate(req micro.Request) (*hoso.Principal, error) {
	if name, ok := strings.CutPrefix(req.Subject(), IngestSubject+"."); ok {
		p, err := s.Tokens.Principal(s.ctx, name)
		if hoso.ErrorCode(err) == hoso.ENOTFOUND {
			return nil, hoso.Errorf(hoso.EUNAUTHORIZED, "%s: no desk named %q (revoked?)", req.Subject(), name)
		}
		if err != nil {
			return nil, err
		}
		if p.Role != hoso.RoleDesk {
			return nil, hoso.Errorf(hoso.EFORBIDDEN, "%s is for the desk role, not %s", req.Subject(), p)
		}
		return p, nil
	}
	h := req.Headers().Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") {
		return nil, hoso.Errorf(hoso.EUNAUTHORIZED, "%s needs a bearer token: header Authorization: Bearer <token>", IngestSubject)
	}
	p, err := s.Tokens.Authenticate(s.ctx, strings.TrimSpace(token))
	if err != nil {
		return nil, err
	}
	if p.Role != hoso.RoleDesk {
		return nil, hoso.Errorf(hoso.EFORBIDDEN, "%s is for the desk role, not %s", IngestSubject, p)
	}
	return p, nil
}

// respond answers req from a worker. It publishes on the connection itself
// rather than through req.Respond or req.Error: those record their outcome
// in a field of req that micro reads, without a lock, as soon as the
// handler returns, and handle returns as soon as a worker has req. micro's
// own error count thus stays 0; the service counts its errors itself, in
// the data of `nats micro stats hoso`.
func (s *IngestService) respond(req micro.Request, header nats.Header, data []byte) {
	if req.Reply() == "" {
		return // a publish, not a request: nobody waits for an answer
	}
	_ = s.nc.PublishMsg(&nats.Msg{Subject: req.Reply(), Header: header, Data: data})
}

// respondError answers with the JSON error body and the micro error headers,
// whose code is the HTTP status the same error gets on the HTTP door.
func (s *IngestService) respondError(req micro.Request, err error) {
	body := hoso.NewErrorBody(err)
	s.respondStatus(req, hoso.HTTPStatus(body.Error.Code), body)
}

// respondStatus answers body as an error with status in the micro error
// headers, and counts it.
func (s *IngestService) respondStatus(req micro.Request, status int, body hoso.ErrorBody) {
	s.errors.Add(1)
	s.respond(req, nats.Header{
		micro.ErrorHeader:     []string{body.Error.Message},
		micro.ErrorCodeHeader: []string{strconv.Itoa(status)},
	}, mustJSON(body))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// Close stops taking requests and waits for those in flight.
func (s *IngestService) Close() error {
	var err error
	if s.svc != nil {
		err = s.svc.Stop()
		// Stop sends the unsubscriptions without waiting for the server:
		// a round trip makes sure no request reaches the service after
		// Close returns.
		if ferr := s.nc.FlushTimeout(5 * time.Second); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
			err = errors.Join(err, ferr)
		}
	}
	s.mu.Lock()
	if s.quit != nil && !s.closing {
		close(s.quit)
	}
	s.closing = true
	s.mu.Unlock()
	s.wg.Wait()
	if s.cancel != nil {
		s.cancel()
	}
	return err
}
