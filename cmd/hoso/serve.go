package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/metrics"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/hoso-ledger/hoso/transparency"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is everything `hoso serve` can be told.
type Config struct {
	DataDir         string
	HTTPAddr        string
	NATSListen      string
	NATSURL         string
	Replicas        int
	DuplicateWindow time.Duration
	// SubjectBuckets lays a new stream out in bucket subjects (0: the
	// existing stream's layout, or one subject per dossier).
	SubjectBuckets int
	// StreamMaxBytes caps the stream's size (0: none; storage.go).
	StreamMaxBytes  byteSize
	UnitFiles       []string
	CalendarFiles   []string
	LogFormat       string
	LogLevel        string
	ShutdownTimeout time.Duration

	// ReadModel false makes an ingest-only process: the stream and both
	// ingest doors, without the read model, its projector, the deadline
	// watcher or the Merkle tree, which the ledger's other processes run.
	ReadModel bool

	// Tamper evidence: the Merkle tree and signed checkpoints.
	TamperEvidence     bool
	CheckpointKey      string
	Origin             string
	CheckpointEvery    uint64
	CheckpointInterval time.Duration
	// VerifyRate is continuous verification's events a second (0: off).
	VerifyRate      float64
	NATSCredentials string
	// NATSCalloutKey and NATSCalloutAccount, with NATSURL, make the desk
	// principals NATS users of the cluster (eventstore.DeskCallout).
	NATSCalloutKey     string
	NATSCalloutAccount string
	// DueSoon is the working time before its due from which an open
	// dossier counts as due soon (listings, backlogs, metrics, alerts).
	DueSoon time.Duration
	// Deadline watcher and metrics (monitoring.go).
	DeadlineInterval time.Duration
	MetricsTimeout   time.Duration
	// Demo preloads a simulated year of Hà Nội once (see demo.go).
	Demo         bool
	DemoDossiers int
	// MemoryLimit bounds the process's memory (memlimit.go).
	MemoryLimit memoryLimit
	// AuthFailureBurst is how many failed authentications an address may
	// make before it is slowed to one every few seconds.
	AuthFailureBurst int
	// LookupBurst is how many citizen lookups an address may make before
	// it is slowed to one every few seconds.
	LookupBurst int
	// TLS of the HTTP door and the embedded NATS server, and the CA of
	// --nats-url (tls.go).
	TLSCert, TLSKey string
	NATSCA          string
	// InsecureListen lets addresses beyond loopback be served without TLS.
	InsecureListen bool
	// MetricsListen serves /metrics on an address of its own, "" on the
	// HTTP door (monitoring.go).
	MetricsListen string
}

// DefaultConfig is the embedded default: everything under ./hoso-data.
func DefaultConfig() Config {
	return Config{
		DataDir:            "hoso-data",
		HTTPAddr:           "127.0.0.1:8080",
		NATSListen:         "127.0.0.1:4222",
		Replicas:           1,
		DuplicateWindow:    eventstore.DefaultDuplicateWindow,
		NATSCalloutAccount: "HOSO",
		LogFormat:          "text",
		LogLevel:           "info",
		ShutdownTimeout:    30 * time.Second,

		ReadModel:          true,
		TamperEvidence:     true,
		CheckpointEvery:    transparency.DefaultCheckpointEvery,
		CheckpointInterval: transparency.DefaultCheckpointInterval,
		VerifyRate:         transparency.DefaultVerifyRate,
		DueSoon:            projections.DefaultDueSoon,

		DeadlineInterval: defaultDeadlineInterval,
		MetricsTimeout:   projections.DefaultScrapeTimeout,
		DemoDossiers:     DefaultDemoDossiers,
		MemoryLimit:      memoryLimitAuto,
		AuthFailureBurst: handlers.DefaultAuthFailureBurst,
		LookupBurst:      handlers.DefaultLookupBurst,
	}
}

// Main is the running ledger. Tests drive it end to end: NewMain, set
// Config, Open, use it, Close.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Now is the clock; tests replace it.
	Now hoso.Clock
	// Ready is closed once Open has finished.
	Ready chan struct{}

	Units    *hoso.Units
	Calendar *hoso.Calendar
	Store    *eventstore.Store
	Ingester *eventstore.Ingester
	Ingest   *eventstore.IngestService
	HTTP     *handlers.Server
	// Tokens are the deployment's principals, shared by its processes;
	// DeskCallout makes its desks NATS users, nil without a callout.
	Tokens      *eventstore.Tokens
	DeskCallout *eventstore.DeskCallout
	// TLS is the server configuration of --tls-cert, nil without (tls.go).
	TLS *tls.Config

	Transparency *transparency.Log
	// DB is the SQLite read model and Projector what fills it from the
	// stream, in a goroutine Main owns (see openReadModel).
	DB        *projections.DB
	Projector *projections.Projector

	projectorCancel context.CancelFunc
	projectorWG     sync.WaitGroup

	// Metrics is the process's Prometheus registry; Events is the
	// counted EventService in front of Ingester; Watcher appends the
	// overdue events (monitoring.go).
	Metrics *prometheus.Registry
	// MetricsHTTP serves /metrics with --metrics-listen, nil without.
	MetricsHTTP *handlers.MetricsServer
	Events      *metrics.Events
	Watcher     *projections.Watcher
	demoCancel  context.CancelFunc
	demoWG      sync.WaitGroup

	prevMemoryLimit int64
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Now: time.Now, Ready: make(chan struct{})}
}

// ParseFlags reads serve's flags and their environment variables.
func (m *Main) ParseFlags(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &m.Config
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (NATS store, SQLite read model, keys)")
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "HTTP listen address")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "embedded NATS client listen address")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "use this NATS server or cluster instead of the embedded one")
	fs.IntVar(&c.Replicas, "replicas", c.Replicas, "stream replicas (3 on a cluster)")
	fs.DurationVar(&c.DuplicateWindow, "dedup-window", c.DuplicateWindow, "JetStream Msg-Id deduplication window")
	fs.IntVar(&c.SubjectBuckets, "subject-buckets", c.SubjectBuckets, "lay a new stream out in this many bucket subjects instead of one per dossier (65536 for millions of dossiers, see docs/scaling.md; 0: the stream's own layout)")
	fs.Var(&c.StreamMaxBytes, "stream-max-bytes", "cap the stream HOSO_EVENTS at this size (500GiB; 0: none): past it events are refused with 503 instead of the disk filling up")
	fs.Var((*multiFlag)(&c.UnitFiles), "units", "operator units CSV (repeatable)")
	fs.Var((*multiFlag)(&c.CalendarFiles), "calendar", "calendar override CSV (repeatable)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to drain in-flight requests on SIGTERM")
	fs.BoolVar(&c.ReadModel, "read-model", c.ReadModel, "keep the SQLite read model, the deadline watcher and the Merkle tree here; false serves ingest only")
	fs.BoolVar(&c.TamperEvidence, "tamper-evidence", c.TamperEvidence, "maintain the Merkle tree and sign checkpoints")
	fs.StringVar(&c.CheckpointKey, "checkpoint-key", c.CheckpointKey, "checkpoint signing key file (default DATA/checkpoint.key, created on first start)")
	fs.StringVar(&c.Origin, "origin", c.Origin, "name of this ledger in its checkpoints, used when the key is created (default hoso-<random>)")
	fs.Uint64Var(&c.CheckpointEvery, "checkpoint-every", c.CheckpointEvery, "sign a checkpoint after this many new events")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", c.CheckpointInterval, "sign a checkpoint at least this often while events arrive")
	fs.Float64Var(&c.VerifyRate, "verify-rate", c.VerifyRate, "continuous verification: events a second re-read from the stream and checked against the Merkle tree's recorded leaf hashes (0 turns it off)")
	fs.StringVar(&c.NATSCredentials, "nats-creds", c.NATSCredentials, "credentials (.creds or NKey seed file) of the ledger's role on --nats-url")
	fs.StringVar(&c.NATSCalloutKey, "nats-callout-key", c.NATSCalloutKey, "seed file of the account key the cluster's auth_callout names as issuer: desk principals then connect to --nats-url with their tokens (deploy/nats/accounts.conf)")
	fs.StringVar(&c.NATSCalloutAccount, "nats-callout-account", c.NATSCalloutAccount, "the account of --nats-url that desks connecting with their tokens are placed in")
	fs.DurationVar(&c.DueSoon, "due-soon", c.DueSoon, "working time before its due from which a dossier is due soon")
	m.monitoringFlags(fs)
	m.tlsFlags(fs)
	fs.BoolVar(&c.Demo, "demo", c.Demo, "preload a simulated year of Hà Nội once, in the background")
	fs.IntVar(&c.DemoDossiers, "demo-dossiers", c.DemoDossiers, "dossiers of the demo preload")
	fs.IntVar(&c.AuthFailureBurst, "auth-failure-burst", c.AuthFailureBurst, "failed authentications an address may make before it is slowed to one every few seconds (429 meanwhile)")
	fs.IntVar(&c.LookupBurst, "lookup-burst", c.LookupBurst, "citizen lookups (/tra-cuu, /v1/lookup) an address may make before it is slowed to one every 6 s (429 meanwhile)")
	fs.Var(&c.MemoryLimit, "memory-limit", "the process's memory: a size (2GiB), auto (90% of the container's or machine's memory; GOMEMLIMIT wins) or off; the Go heap gets what SQLite's caches leave (docs/scaling.md)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso serve [flags]\n\nFlags (each also read from HOSO_<NAME>):\n")
		fs.PrintDefaults()
	}
	return parseWithEnv(fs, args)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format %q: want text or json", format)
}

// Open starts everything: registry, calendar, store, ingest doors.
func (m *Main) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if m.Logger == nil {
		if m.Logger, err = newLogger(os.Stderr, m.Config.LogFormat, m.Config.LogLevel); err != nil {
			return err
		}
	}
	if m.Config.Demo && !m.Config.ReadModel {
		return errors.New("--demo needs the read model: an ingest-only process (--read-model=false) has nothing to show it with")
	}
	if err := m.openTLS(); err != nil {
		return err
	}
	if err := m.applyMemoryLimit(); err != nil {
		return err
	}
	if m.Units, err = loadUnits(m.Config.UnitFiles); err != nil {
		return err
	}
	if m.Calendar, err = loadCalendar(m.Config.CalendarFiles); err != nil {
		return err
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	m.Store, err = eventstore.Open(ctx, eventstore.Config{
		DataDir: m.Config.DataDir, URL: m.Config.NATSURL, Listen: m.Config.NATSListen,
		Replicas: m.Config.Replicas, DuplicateWindow: m.Config.DuplicateWindow, Logger: m.Logger,
		Credentials: m.Config.NATSCredentials, CalloutKey: m.Config.NATSCalloutKey, CalloutAccount: m.Config.NATSCalloutAccount,
		SubjectBuckets: m.Config.SubjectBuckets,
		MaxBytes:       int64(m.Config.StreamMaxBytes), IndexSnapshot: filepath.Join(m.Config.DataDir, indexSnapshotFile),
		TLS: m.TLS, CAFile: m.Config.NATSCA,
	})
	if err != nil {
		return err
	}
	if m.Config.ReadModel {
		if err := m.prepareReadModel(ctx); err != nil {
			return err
		}
	}
	if m.Config.TamperEvidence && m.Config.ReadModel {
		if err := m.openTransparency(ctx); err != nil {
			return err
		}
	}
	if err := m.openTokens(ctx); err != nil {
		return err
	}
	m.Ingester = eventstore.NewIngester(m.Store, m.Units, m.Calendar, m.Now)
	m.openMetrics()
	m.Ingest = &eventstore.IngestService{Events: m.Events, Tokens: m.Tokens}
	if err := m.Ingest.Open(m.Store.Conn()); err != nil {
		return err
	}
	if m.Config.ReadModel {
		if err := m.openReadModel(); err != nil {
			return err
		}
	}
	m.HTTP = handlers.NewServer()
	m.HTTP.Addr = m.Config.HTTPAddr
	m.HTTP.Logger = m.Logger
	m.HTTP.Events = m.Events
	m.HTTP.Dossiers = m.Ingester
	m.HTTP.Tokens, m.HTTP.Units, m.HTTP.Now = m.Tokens, m.Units, m.Now
	m.HTTP.AuthFailureBurst = m.Config.AuthFailureBurst
	m.HTTP.TLSConfig, m.HTTP.TLS = m.TLS, m.TLS != nil
	if m.Transparency != nil {
		m.HTTP.Proofs = m.Transparency
	}
	if err := m.mountMetrics(); err != nil {
		return err
	}
	if m.Config.ReadModel {
		m.mountReadModel()
		if err := m.mountDashboard(); err != nil {
			return err
		}
	} else {
		m.mountIngestOnly()
	}
	if err := m.HTTP.Open(); err != nil {
		return err
	}
	if m.Config.Demo {
		if err := m.demoTokens(ctx); err != nil {
			return err
		}
	}
	if m.DeskCallout != nil {
		m.Logger.Info("NATS desks connect with their token as password and send to hoso.ingest.<name>: nats --user NAME --password \"$(cat TOKEN-FILE)\" req hoso.ingest.NAME …")
	}
	if creds := m.Store.DeskCredentials(); creds != "" {
		m.Logger.Info("NATS shared desk credentials (request hoso.ingest with header Authorization: Bearer <token>): nats --nkey "+creds, "file", creds)
	}
	m.Logger.Info("hoso serving", "http", m.HTTP.URL(), "nats", m.Store.ClientURL(),
		"ingest_subjects", eventstore.DeskSubject("<desk>")+", "+eventstore.IngestSubject, "data", m.Config.DataDir, "read_model", m.Config.ReadModel)
	if !m.Config.ReadModel {
		m.Logger.Info("serving ingest only: no read model, deadline watcher or Merkle tree in this process")
	}
	// A demo preload opens the watcher itself once it is done: overdue
	// events amid a history being loaded would refuse its later events.
	if m.Config.ReadModel && !m.startDemo() {
		if err := m.openWatcher(); err != nil {
			return err
		}
	}
	close(m.Ready)
	return nil
}

// Close drains the doors first, then closes the store: nothing in flight is
// cut off, and the stream is closed cleanly.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	m.stopDemo()
	var errs []error
	if m.HTTP != nil {
		errs = append(errs, m.HTTP.Close(ctx))
	}
	if m.MetricsHTTP != nil {
		errs = append(errs, m.MetricsHTTP.Close(ctx))
	}
	if m.Ingest != nil {
		errs = append(errs, m.Ingest.Close())
	}
	if m.DeskCallout != nil {
		errs = append(errs, m.DeskCallout.Close())
	}
	errs = append(errs, m.closeWatcher())
	errs = append(errs, m.closeReadModel())
	// After every writer, so that the last checkpoint covers every event.
	if m.Transparency != nil {
		errs = append(errs, m.Transparency.Close())
	}
	if m.Tokens != nil {
		errs = append(errs, m.Tokens.Close())
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	m.restoreMemoryLimit()
	return errors.Join(errs...)
}

// Serve opens, waits for ctx (SIGINT/SIGTERM), then closes.
func (m *Main) Serve(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down: draining requests")
	if err := m.Close(); err != nil {
		return err
	}
	m.Logger.Info("stopped")
	return nil
}

// openTransparency loads or creates the checkpoint key and starts the
// goroutine that keeps the Merkle tree and signs checkpoints.
func (m *Main) openTransparency(ctx context.Context) error {
	keyFile := m.Config.CheckpointKey
	if keyFile == "" {
		keyFile = filepath.Join(m.Config.DataDir, "checkpoint.key")
	}
	key, err := transparency.LoadOrCreateKey(keyFile, m.Config.Origin)
	if err != nil {
		return err
	}
	m.Transparency = &transparency.Log{
		Ledger: m.Store, Dossiers: m.Store, Checkpoints: m.Store, Key: key,
		TreeFile:           filepath.Join(m.Config.DataDir, "tree.hashes"),
		CheckpointEvery:    m.Config.CheckpointEvery,
		CheckpointInterval: m.Config.CheckpointInterval,
		VerifyRate:         m.Config.VerifyRate,
		VerifyStateFile:    filepath.Join(m.Config.DataDir, "verified.json"),
		Logger:             m.Logger,
	}
	if err := m.Transparency.Open(ctx); err != nil {
		m.Transparency = nil
		return err
	}
	m.Logger.Info("checkpoints signed; auditors verify them with this key", "verifier_key", key.VerifierKey)
	return nil
}

func loadUnits(files []string) (*hoso.Units, error) {
	var extra []hoso.NamedReader
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("units: %w", err)
		}
		defer f.Close()
		extra = append(extra, hoso.NamedReader{Name: name, R: f})
	}
	return hoso.LoadUnits(extra...)
}

func loadCalendar(files []string) (*hoso.Calendar, error) {
	var rs []io.Reader
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("calendar: %w", err)
		}
		defer f.Close()
		rs = append(rs, f)
	}
	return hoso.NewCalendar(rs...)
}
