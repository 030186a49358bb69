package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
// hoso never uses the global registry: each Main owns one.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves the registry's metrics. A collector that fails leaves its
// family out (and the error in the log) but the rest is still served.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Registry: reg, MaxRequestsInFlight: 4, Timeout: 30 * time.Second}
	if log != nil {
		opts.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return promhttp.HandlerFor(reg, opts)
}

// Ingest latency buckets, in seconds: from a cached single event (well
// under a millisecond) to a large batch.
var ingestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// The request label values of hoso_ingest_duration_seconds.
const (
	RequestEvent = "event"
	RequestBatch = "batch"
)

// errorCodes are the rejection reasons, pre-set to zero so that rates and
// ratios exist before the first rejection.
var errorCodes = []string{hoso.EINVALID, hoso.ECONFLICT, hoso.ENOTFOUND, hoso.EUNAUTHORIZED, hoso.EFORBIDDEN, hoso.ETOOLARGE, hoso.EUNSUPPORTED, hoso.EUNAVAILABLE, hoso.EINTERNAL}

// Events is a hoso.EventService that counts what the service it wraps
// appends and rejects, and times each call. Both ingest doors and the
// deadline watcher go through it, so every event is counted once, where it
// is validated.
type Events struct {
	next     hoso.EventService
	appended *prometheus.CounterVec
	rejected *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// The counters of the known types and codes, looked up once here
	// rather than by label for every event of every batch.
	appendedByType    map[hoso.EventType]prometheus.Counter
	rejectedByCode    map[string]prometheus.Counter
	durationByRequest map[string]prometheus.Observer
}

var (
	_ hoso.EventService      = (*Events)(nil)
	_ hoso.RejectionRecorder = (*Events)(nil)
)

// RecordRejected counts an event refused before it reached the service
// (it did not decode); hoso.Ingest calls it.
func (e *Events) RecordRejected(err error) {
	e.countRejected(err)
}

// NewEvents wraps next and registers its metrics on reg.
func NewEvents(next hoso.EventService, reg prometheus.Registerer) *Events {
	e := &Events{
		next: next,
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hoso_events_appended_total",
			Help: "Events appended to the ledger, by event type (re-sent duplicates are not counted).",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hoso_events_rejected_total",
			Help: "Events refused by the ingest service, by error code.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hoso_ingest_duration_seconds",
			Help:    "Time to validate and append the events of one ingest request, by request: one event or a batch of several.",
			Buckets: ingestBuckets,
		}, []string{"request"}),
	}
	e.appendedByType = make(map[hoso.EventType]prometheus.Counter, len(hoso.EventTypes))
	for _, t := range hoso.EventTypes {
		e.appendedByType[t] = e.appended.WithLabelValues(string(t))
	}
	e.rejectedByCode = make(map[string]prometheus.Counter, len(errorCodes))
	for _, c := range errorCodes {
		e.rejectedByCode[c] = e.rejected.WithLabelValues(c)
	}
	e.durationByRequest = map[string]prometheus.Observer{
		RequestEvent: e.duration.WithLabelValues(RequestEvent),
		RequestBatch: e.duration.WithLabelValues(RequestBatch),
	}
	reg.MustRegister(e.appended, e.rejected, e.duration)
	return e
}

// Append appends through the wrapped service and counts the outcome.
func (e *Events) Append(ctx context.Context, ev *hoso.Event) (hoso.AppendResult, error) {
	start := time.Now()
	res, err := e.next.Append(ctx, ev)
	e.durationByRequest[RequestEvent].Observe(time.Since(start).Seconds())
	e.count(ev, res, err)
	return res, err
}

// AppendBatch appends through the wrapped service and counts each outcome.
func (e *Events) AppendBatch(ctx context.Context, events []*hoso.Event) []hoso.BatchResult {
	start := time.Now()
	results := e.next.AppendBatch(ctx, events)
	request := RequestBatch
	if len(events) == 1 {
		request = RequestEvent
	}
	e.durationByRequest[request].Observe(time.Since(start).Seconds())
	for i, r := range results {
		e.count(events[i], r.Result, r.Err)
	}
	return results
}

func (e *Events) count(ev *hoso.Event, res hoso.AppendResult, err error) {
	switch {
	case err != nil:
		e.countRejected(err)
	case res.Duplicate:
	default:
		c, ok := e.appendedByType[ev.Type]
		if !ok {
			c = e.appended.WithLabelValues(string(ev.Type))
		}
		c.Inc()
	}
}

func (e *Events) countRejected(err error) {
	code := hoso.ErrorCode(err)
	c, ok := e.rejectedByCode[code]
	if !ok {
		c = e.rejected.WithLabelValues(code)
	}
	c.Inc()
}

// HTTP measures the requests of the HTTP server by route and status code.
type HTTP struct {
	duration *prometheus.HistogramVec
}

// NewHTTP registers the HTTP request histogram on reg.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	h := &HTTP{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hoso_http_request_duration_seconds",
		Help:    "HTTP requests by route pattern (\"unmatched\" when no route matched) and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "code"})}
	reg.MustRegister(h.duration)
	return h
}

// Observe records one finished request; it is handlers.Server.Observe.
func (h *HTTP) Observe(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched" // unknown paths must not become labels
	}
	h.duration.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}
