package main

import (
	"flag"
	"time"

	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/metrics"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/prometheus/client_golang/prometheus"
)

// monitoringFlags adds the flags of the deadline watcher and the metrics
// (the due_soon horizon, --due-soon, is serve's own).
func (m *Main) monitoringFlags(fs *flag.FlagSet) {
	c := &m.Config
	fs.DurationVar(&c.DeadlineInterval, "deadline-interval", c.DeadlineInterval, "how often the deadline watcher looks for dossiers past due (0 turns it off)")
	fs.DurationVar(&c.MetricsTimeout, "metrics-timeout", c.MetricsTimeout, "bound on the read model's queries of one /metrics scrape")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "serve /metrics on this address of its own instead of the HTTP address (HTTPS with --tls-cert)")
}

// openMetrics creates the registry and the counted EventService that both
// ingest doors and the deadline watcher use.
func (m *Main) openMetrics() {
	m.Metrics = metrics.NewRegistry()
	m.Events = metrics.NewEvents(m.Ingester, m.Metrics)
}

// mountMetrics registers the read model's collector, when this process
// keeps one, and serves /metrics, on the HTTP door or on --metrics-listen;
// it runs once the read model is open and the HTTP server created.
func (m *Main) mountMetrics() error {
	if m.DB != nil {
		m.Metrics.MustRegister(&projections.Collector{
			DB: m.DB, Projector: m.Projector, Ledger: m.Store, Units: m.Units, Calendar: m.Calendar,
			Now: m.Now, Logger: m.Logger, DueSoon: m.Config.DueSoon, Timeout: m.Config.MetricsTimeout,
		})
	}
	if m.Transparency != nil && m.Config.VerifyRate > 0 {
		m.registerVerification()
	}
	m.registerStorage()
	m.HTTP.Observe = metrics.NewHTTP(m.Metrics).Observe
	h := metrics.Handler(m.Metrics, m.Logger)
	if m.Config.MetricsListen == "" {
		// Public on purpose: aggregate counts by unit, which the published
		// reports show anyway, and no dossier code or name (docs/security.md).
		m.HTTP.Handle("GET /metrics", handlers.Public(), h)
		return nil
	}
	m.MetricsHTTP = &handlers.MetricsServer{Addr: m.Config.MetricsListen, Handler: h, TLSConfig: m.TLS, Logger: m.Logger}
	if err := m.MetricsHTTP.Open(); err != nil {
		return err
	}
	m.Logger.Info("metrics served on their own address, not on the HTTP door", "metrics", m.MetricsHTTP.URL()+"/metrics")
	return nil
}

// openWatcher starts the deadline watcher unless its interval is 0. It
// waits for the read model to catch up before each pass.
func (m *Main) openWatcher() error {
	if m.Config.DeadlineInterval <= 0 {
		return nil
	}
	m.Watcher = &projections.Watcher{
		DB: m.DB, Events: m.Events, Now: m.Now, Logger: m.Logger,
		Interval: m.Config.DeadlineInterval, Ready: m.Projector.CaughtUp,
	}
	return m.Watcher.Open()
}

// closeWatcher stops the watcher; it runs before the read model and the
// store close, which a pass in progress uses.
func (m *Main) closeWatcher() error {
	if m.Watcher == nil {
		return nil
	}
	return m.Watcher.Close()
}

// Monitoring defaults.
const (
	defaultDeadlineInterval = time.Minute
)

// registerVerification exports continuous verification's position and
// verdict (HosoLedgerTampered in deploy/prometheus/hoso-alerts.yml).
func (m *Main) registerVerification() {
	log := m.Transparency
	m.Metrics.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hoso_ledger_verified_seq",
			Help: "Every event up to this stream sequence was re-read and matched the leaf hash recorded when it was appended.",
		}, func() float64 { return float64(log.VerifiedSeq()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hoso_ledger_tampered",
			Help: "1 once continuous verification found an event changed or missing under the running ledger (the first bad seq is in the log), else 0.",
		}, func() float64 {
			if log.Tampered() != nil {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hoso_ledger_verified_events_total",
			Help: "Events continuous verification re-read and checked since the process started.",
		}, func() float64 { return float64(log.VerifiedEvents()) }),
	)
}
