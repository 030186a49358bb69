package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/projections"
)

// reportConfig is what `hoso report` can be told.
type reportConfig struct {
	DataDir   string
	URL       string
	TokenFile string
	UnitFiles []string
	Unit      string
	Level     string
	From, To  string
	By        string
	Format    string
	Output    string
}

// runReport prints a report: from the data directory's read model, or from
// a running server with --url.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := reportConfig{DataDir: DefaultConfig().DataDir, Format: "text"}
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory whose read model to read")
	fs.StringVar(&c.URL, "url", c.URL, "ask a running server at this base URL (http://127.0.0.1:8080) instead of reading --data")
	fs.StringVar(&c.TokenFile, "token-file", c.TokenFile, "file holding a supervisor's or auditor's bearer token, for --url")
	fs.Var((*multiFlag)(&c.UnitFiles), "units", "operator units CSV (repeatable), as given to serve")
	fs.StringVar(&c.Unit, "unit", c.Unit, "the report's scope: a unit code; empty is the whole country")
	fs.StringVar(&c.Level, "level", c.Level, "level of the rows: province, district, ward or office (default: the unit's own)")
	fs.StringVar(&c.From, "from", c.From, "first local date of the period, YYYY-MM-DD")
	fs.StringVar(&c.To, "to", c.To, "last local date of the period, YYYY-MM-DD")
	fs.StringVar(&c.By, "by", c.By, "rows by unit (default) or procedure")
	fs.StringVar(&c.Format, "format", c.Format, "text, csv, xlsx or json")
	fs.StringVar(&c.Output, "o", c.Output, "write to this file instead of standard output")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso report --from YYYY-MM-DD --to YYYY-MM-DD [--unit CODE] [--level LEVEL] [flags]\n\nFlags (each also read from HOSO_<NAME>):\n")
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("report: unexpected argument %q", fs.Arg(0))
	}
	switch c.Format {
	case "":
		c.Format = "text"
	case "text", "csv", "xlsx", "json":
	default:
		return fmt.Errorf("format %q: want text, csv, xlsx or json", c.Format)
	}
	if c.Level != "" {
		if _, err := hoso.ParseLevel(c.Level); err != nil {
			return err
		}
	}
	q := hoso.ReportQuery{Unit: c.Unit, Level: hoso.Level(c.Level), From: c.From, To: c.To, By: c.By}
	var rep *projections.Report
	var err error
	if c.URL != "" {
		rep, err = fetchReport(ctx, c.URL, c.TokenFile, q)
	} else {
		rep, err = localReport(ctx, c.DataDir, c.UnitFiles, q)
	}
	if err != nil {
		return err
	}
	out := stdout
	if c.Output != "" {
		f, err := os.Create(c.Output)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	switch c.Format {
	case "csv":
		err = rep.CSV(out)
	case "xlsx":
		err = rep.XLSX(out)
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	default:
		err = rep.Text(out)
	}
	if err != nil {
		return err
	}
	if f, ok := out.(*os.File); ok && c.Output != "" {
		return f.Close()
	}
	return nil
}

// localReport reads the data directory's read model; it never creates one.
func localReport(ctx context.Context, dataDir string, unitFiles []string, q hoso.ReportQuery) (*projections.Report, error) {
	path := readModelPath(dataDir)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no read model at %s: start `hoso serve --data %s` or run `hoso rebuild --data %s`", path, dataDir, dataDir)
	}
	if stale, err := projections.NeedsRebuild(path); err != nil {
		return nil, err
	} else if stale {
		return nil, fmt.Errorf("the read model at %s was built by another projection version: run `hoso rebuild --data %s`", path, dataDir)
	}
	units, err := loadUnits(unitFiles)
	if err != nil {
		return nil, err
	}
	db, err := projections.Open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Report(ctx, units, q)
}

// fetchReport asks a running server for the report as JSON.
func fetchReport(ctx context.Context, base, tokenFile string, q hoso.ReportQuery) (*projections.Report, error) {
	v := url.Values{}
	for k, s := range map[string]string{"unit": q.Unit, "level": string(q.Level), "from": q.From, "to": q.To, "by": q.By} {
		if s != "" {
			v.Set(k, s)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/report?"+v.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", base, err)
	}
	req.Header.Set("Accept", "application/json")
	client, err := tokenClient(tokenFile, time.Minute, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, handlers.DefaultMaxBodyBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var eb hoso.ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
			return nil, hoso.Errorf(eb.Error.Code, "%s", eb.Error.Message)
		}
		return nil, fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	var rep projections.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("report from %s: %w", req.URL, err)
	}
	return &rep, nil
}

// runRebuild builds the data directory's read model anew from the stream
// and swaps it in. The server that owns the read model must be stopped: a
// running one rebuilds by itself when it starts with a stale file.
func runRebuild(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := DefaultConfig()
	c := &def
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (NATS store and read model)")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "embedded NATS client listen address while rebuilding")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "read the stream from this NATS server or cluster instead of the embedded one")
	fs.StringVar(&c.NATSCredentials, "nats-creds", c.NATSCredentials, "credentials (.creds or NKey seed file) of the ledger's role on --nats-url")
	fs.Var((*multiFlag)(&c.UnitFiles), "units", "operator units CSV (repeatable), as given to serve")
	c.MemoryLimit = memoryLimitOff
	fs.Var(&c.MemoryLimit, "memory-limit", "the process's memory, as serve's flag (default off: the collector lets the heap grow by up to 1 GiB beyond what is live)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso rebuild [flags]\n\nRebuilds <data>/%s from the stream; stop the server first.\n\nFlags (each also read from HOSO_<NAME>):\n", ReadModelFile)
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	units, err := loadUnits(c.UnitFiles)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := c.MemoryLimit.apply(true, log); err != nil {
		return err
	}
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: c.DataDir, URL: c.NATSURL, Listen: c.NATSListen, Logger: log,
		Credentials: c.NATSCredentials, IndexSnapshot: filepath.Join(c.DataDir, indexSnapshotFile)})
	if err != nil {
		return fmt.Errorf("open the stream (is a server running on %s? stop it first): %w", c.DataDir, err)
	}
	defer store.Close()
	path := readModelPath(c.DataDir)
	start := time.Now()
	progress := rebuildProgress(func(done, total uint64, rate float64, eta time.Duration) {
		fmt.Fprintln(stderr, progressLine(done, total, rate, eta))
	})
	if err := projections.Rebuild(ctx, store, units, path, progress); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rebuilt %s in %s\n", path, time.Since(start).Round(time.Millisecond))
	return nil
}

// progressLine is one line of a rebuild's progress for a terminal.
func progressLine(done, total uint64, rate float64, eta time.Duration) string {
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	return fmt.Sprintf("rebuild: %d/%d events (%.0f%%), %.0f events/s, ETA %s", done, total, pct, rate, eta)
}
