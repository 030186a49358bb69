package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
)

// importConfig is what `hoso import` can be told.
type importConfig struct {
	File     string
	DataDir  string
	URL      string
	NATSURL  string
	NATSNKey string
	// TokenFile holds the desk's bearer token for --url and --nats-url.
	TokenFile     string
	Batch         int
	FromLine      int64
	Rejects       string
	UnitFiles     []string
	CalendarFiles []string
	Timeout       time.Duration
	// SubjectBuckets lays out the stream of a new data directory, as
	// serve's flag does.
	SubjectBuckets int
}

// maxImportLine bounds one NDJSON line; an event is far smaller.
const maxImportLine = 1 << 20

func runImport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := importConfig{DataDir: DefaultConfig().DataDir, Batch: 1000, FromLine: 1, Timeout: 2 * time.Minute}
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory of a ledger that is not running (opened like serve does)")
	fs.StringVar(&c.URL, "url", "", "send to a running server's HTTP API instead, e.g. http://127.0.0.1:8080")
	fs.StringVar(&c.NATSURL, "nats-url", "", "send to a running server's NATS ingest service (hoso.ingest) instead")
	fs.StringVar(&c.NATSNKey, "nats-nkey", "", "with --nats-url: send as the shared desk role with this NKey seed (DATA/nats-desk.nk on the embedded server), the token in a header; without it the desk of --token-file connects by its token and sends to hoso.ingest.<name>")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding a desk's bearer token, sent with --url and --nats-url (hoso token add --role desk)")
	fs.IntVar(&c.Batch, "batch", c.Batch, "events per batch")
	fs.Int64Var(&c.FromLine, "from-line", c.FromLine, "resume at this line number (lines before it are skipped)")
	fs.StringVar(&c.Rejects, "rejects", "", "write every rejected line's number, error and text to this file")
	fs.Var((*multiFlag)(&c.UnitFiles), "units", "operator units CSV, as given to serve (repeatable; with --data)")
	fs.Var((*multiFlag)(&c.CalendarFiles), "calendar", "calendar override CSV, as given to serve (repeatable; with --data)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "how long one batch may take over HTTP or NATS")
	fs.IntVar(&c.SubjectBuckets, "subject-buckets", 0, "with --data: lay a new stream out in this many bucket subjects, as serve's flag")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso import [flags] FILE|-\n\nImports an NDJSON history through the validating ingest service.\n\nFlags (each also read from HOSO_<NAME>):\n")
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("import: want one FILE, or - for standard input")
	}
	c.File = fs.Arg(0)
	if c.Batch < 1 {
		return fmt.Errorf("batch: must be at least 1, got %d", c.Batch)
	}
	if c.FromLine < 1 {
		return fmt.Errorf("from-line: must be at least 1, got %d", c.FromLine)
	}
	in := stdin
	if c.File != "-" {
		f, err := os.Open(c.File)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var s sender
	var ledger *Main // the data directory's, when importing into it
	switch {
	case c.URL != "" || c.NATSURL != "":
		var closeFn func()
		var err error
		if s, closeFn, err = dial(c.URL, c.NATSURL, c.NATSNKey, c.TokenFile, c.Timeout); err != nil {
			return err
		}
		defer closeFn()
	default:
		m := NewMain()
		m.Config.DataDir = c.DataDir
		m.Config.UnitFiles, m.Config.CalendarFiles = c.UnitFiles, c.CalendarFiles
		m.Config.SubjectBuckets = c.SubjectBuckets
		m.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		var err error
		if ledger, err = openLedger(ctx, m); err != nil {
			return err
		}
		defer ledger.Close()
		s = serviceSender{svc: bulkIngester{ledger.Ingester}}
	}
	var rejects io.Writer = io.Discard
	if c.Rejects != "" {
		f, err := os.Create(c.Rejects)
		if err != nil {
			return err
		}
		defer f.Close()
		rejects = f
	}
	err := importLines(ctx, in, s, c, stdout, stderr, rejects)
	if ledger != nil && (err == nil || errors.As(err, new(*exitError))) {
		// Bring the data directory's read model up to date, so that
		// `hoso report --data` shows the import at once.
		if cerr := catchUpReadModel(ctx, ledger); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	return err
}

// catchUpReadModel opens the data directory's read model (rebuilding it if
// it is stale), lets the projector apply the whole stream, and stops it.
func catchUpReadModel(ctx context.Context, m *Main) error {
	if err := m.prepareReadModel(ctx); err != nil {
		return err
	}
	if err := m.openReadModel(); err != nil {
		return err
	}
	for {
		err := m.Projector.CaughtUp(ctx)
		if err == nil {
			m.Logger.Info("read model up to date", "seq", m.Projector.AppliedSeq())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("read model: %w (%v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// openLedger opens the data directory's store and ingest service without
// the doors: an import is the only writer while the server is down.
func openLedger(ctx context.Context, m *Main) (*Main, error) {
	var err error
	if m.Units, err = loadUnits(m.Config.UnitFiles); err != nil {
		return nil, err
	}
	if m.Calendar, err = loadCalendar(m.Config.CalendarFiles); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	m.Store, err = eventstore.Open(ctx, eventstore.Config{
		DataDir: m.Config.DataDir, Listen: "127.0.0.1:0",
		Replicas: 1, DuplicateWindow: m.Config.DuplicateWindow, Logger: m.Logger,
		SubjectBuckets: m.Config.SubjectBuckets, IndexSnapshot: filepath.Join(m.Config.DataDir, indexSnapshotFile),
	})
	if err != nil {
		return nil, fmt.Errorf("%w (is a server running on this data directory? then use --url or --nats-url)", err)
	}
	m.Ingester = eventstore.NewIngester(m.Store, m.Units, m.Calendar, m.Now)
	return m, nil
}

// bulkIngester appends batches with AppendBulk: an import into a data
// directory is a history load, whose ids JetStream need not hold in its
// duplicate window (the dossiers' histories make re-runs no-ops).
type bulkIngester struct{ *eventstore.Ingester }

func (b bulkIngester) AppendBatch(ctx context.Context, events []*hoso.Event) []hoso.BatchResult {
	return b.AppendBulk(ctx, events)
}

// maxListedRejects bounds the rejected lines printed at the end; --rejects
// keeps them all.
const maxListedRejects = 50

// importLines reads NDJSON from in and sends it in batches, in order: a
// batch is sent once the previous one is answered, so each dossier's events
// reach the ledger in the file's order. Rejected lines are reported and
// skipped; a failure of the ledger or the transport stops the import with
// the line to resume at.
func importLines(ctx context.Context, in io.Reader, s sender, c importConfig, stdout, stderr, rejects io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxImportLine)
	var (
		t        tally
		lineNo   int64
		resumeAt = c.FromLine
		batch    [][]byte
		numbers  []int64
		listed   []string
	)
	prog := newProgress(stderr, "import")
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		results, err := s.send(ctx, batch)
		if err != nil {
			return err
		}
		for i, r := range results {
			if r.Err == nil {
				continue
			}
			msg := fmt.Sprintf("line %d: %s: %s", numbers[i], r.Err.Code, r.Err.Message)
			if len(listed) < maxListedRejects {
				listed = append(listed, msg)
			}
			fmt.Fprintf(rejects, "%s\n\t%s\n", msg, batch[i])
		}
		t.add(results)
		resumeAt = numbers[len(numbers)-1] + 1
		batch, numbers = batch[:0], numbers[:0]
		prog.maybe(t.Appended+t.Duplicates+t.Rejected, "line %d: %d appended, %d duplicates, %d rejected",
			resumeAt-1, t.Appended, t.Duplicates, t.Rejected)
		return nil
	}
	stopped := func(err error) error {
		return fmt.Errorf("import stopped: %w; %d appended before that; resume with --from-line %d", err, t.Appended, resumeAt)
	}
	for sc.Scan() {
		lineNo++
		if lineNo < c.FromLine {
			continue
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			if len(batch) == 0 {
				resumeAt = lineNo + 1
			}
			continue
		}
		batch = append(batch, bytes.Clone(line))
		numbers = append(numbers, lineNo)
		if len(batch) >= c.Batch {
			if err := flush(); err != nil {
				return stopped(err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes", lineNo+1, maxImportLine)
		}
		if ferr := flush(); ferr != nil {
			return stopped(ferr)
		}
		return stopped(err)
	}
	if err := flush(); err != nil {
		return stopped(err)
	}
	prog.line(t.Appended+t.Duplicates+t.Rejected, "done")
	fmt.Fprintf(stdout, "imported %d lines: %d appended, %d duplicates (already in the ledger), %d rejected\n",
		t.Appended+t.Duplicates+t.Rejected, t.Appended, t.Duplicates, t.Rejected)
	for _, msg := range listed {
		fmt.Fprintln(stdout, msg)
	}
	if t.Rejected > int64(len(listed)) {
		fmt.Fprintf(stdout, "… and %d more rejected lines (see --rejects)\n", t.Rejected-int64(len(listed)))
	}
	if t.Rejected > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d lines rejected", t.Rejected)}
	}
	return nil
}
