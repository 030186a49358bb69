package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/simulate"
	"golang.org/x/time/rate"
)

// simulateConfig is what `hoso simulate` can be told.
type simulateConfig struct {
	Sim      simulate.Config
	From, To string
	Level    string
	Out      string
	Summary  string
	URL      string
	NATSURL  string
	NATSNKey string
	// TokenFile holds the desk's bearer token for --url and --nats-url.
	TokenFile string
	Rate      float64
	Batch     int
	Timeout   time.Duration
}

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer, now hoso.Clock) error {
	fs := flag.NewFlagSet("hoso simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := simulateConfig{From: "2024-01-01", To: "2024-12-31", Level: "district", Out: "-", Batch: 500, Timeout: 2 * time.Minute}
	c.Sim.LateShare = simulate.DefaultLateShare
	fs.StringVar(&c.Sim.Scope, "unit", "01", "unit whose wards, districts and own desk receive dossiers")
	fs.StringVar(&c.From, "from", c.From, "first day of the period (YYYY-MM-DD)")
	fs.StringVar(&c.To, "to", c.To, "last day of the period (YYYY-MM-DD); events after now are not generated")
	fs.IntVar(&c.Sim.Dossiers, "dossiers", simulate.DefaultDossiers, "dossiers received over the period")
	fs.Uint64Var(&c.Sim.Seed, "seed", 1, "random seed: the same flags give the same events")
	fs.Float64Var(&c.Sim.LateShare, "late", c.Sim.LateShare, "share of resolutions after the due date (0 to 1)")
	fs.StringVar(&c.Sim.Prefix, "prefix", "", `dossier code prefix (default "S<seed>.")`)
	fs.StringVar(&c.Level, "level", c.Level, "level of the summary's rows: province, district or ward")
	fs.StringVar(&c.Out, "out", c.Out, "write NDJSON to this file (- is standard output)")
	fs.StringVar(&c.Summary, "summary", "", "write the simulator's own counts as JSON to this file")
	fs.StringVar(&c.URL, "url", "", "send to a running server's HTTP API instead of writing NDJSON")
	fs.StringVar(&c.NATSURL, "nats-url", "", "send to a running server's NATS ingest service instead of writing NDJSON")
	fs.StringVar(&c.NATSNKey, "nats-nkey", "", "with --nats-url: send as the shared desk role with this NKey seed (DATA/nats-desk.nk on the embedded server), the token in a header; without it the desk of --token-file connects by its token and sends to hoso.ingest.<name>")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding a desk's bearer token, sent with --url and --nats-url (hoso token add --role desk)")
	fs.Float64Var(&c.Rate, "rate", 0, "target events per second when sending (0: as fast as the ledger answers)")
	fs.IntVar(&c.Batch, "batch", c.Batch, "events per batch when sending")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "how long one batch may take when sending")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso simulate [flags]\n\nGenerates realistic dossier histories and prints its own counts to standard error.\n\nFlags (each also read from HOSO_SIMULATE_<NAME>):\n")
		fs.PrintDefaults()
	}
	if err := parseWithEnvPrefix(fs, args, "HOSO_SIMULATE_"); err != nil {
		return err
	}
	var err error
	if c.Sim.From, err = time.Parse(time.DateOnly, c.From); err != nil {
		return fmt.Errorf("from: want YYYY-MM-DD, got %q", c.From)
	}
	if c.Sim.To, err = time.Parse(time.DateOnly, c.To); err != nil {
		return fmt.Errorf("to: want YYYY-MM-DD, got %q", c.To)
	}
	if c.Batch < 1 {
		return fmt.Errorf("batch: must be at least 1, got %d", c.Batch)
	}
	if c.Rate < 0 {
		return fmt.Errorf("rate: must be 0 or more, got %v", c.Rate)
	}
	c.Sim.Level = hoso.Level(c.Level)
	// Desk systems cannot report the future: the clock caps the period.
	c.Sim.Now = now().Add(-time.Minute)
	units, err := hoso.LoadUnits()
	if err != nil {
		return err
	}
	cal, err := hoso.NewCalendar()
	if err != nil {
		return err
	}
	g, err := simulate.New(units, cal, c.Sim)
	if err != nil {
		return err
	}
	var sum *simulate.Summary
	if c.URL != "" || c.NATSURL != "" {
		sum, err = simulateSend(ctx, g, c, stderr)
	} else {
		sum, err = simulateWrite(ctx, g, c.Out, stdout, stderr)
	}
	if err != nil {
		return err
	}
	if err := sum.WriteText(stderr); err != nil {
		return err
	}
	if c.Summary != "" {
		f, err := os.Create(c.Summary)
		if err != nil {
			return err
		}
		if err := sum.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

// simulateWrite writes the events as NDJSON.
func simulateWrite(ctx context.Context, g *simulate.Generator, out string, stdout, stderr io.Writer) (*simulate.Summary, error) {
	w := stdout
	var f *os.File
	if out != "-" {
		var err error
		if f, err = os.Create(out); err != nil {
			return nil, err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	prog := newProgress(stderr, "simulate")
	var n int64
	var line []byte
	sum, err := g.Run(ctx, func(e *hoso.Event) error {
		line = simulate.AppendLine(line[:0], e)
		n++
		prog.maybe(n, "%d events written, at %s", n, e.At.In(hoso.VietnamZone).Format(time.DateOnly))
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// simulateSend sends the events to a running ledger in batches, paced by
// the target rate. Every event must be appended (or be a duplicate of a
// previous run with the same seed): a rejection means the simulation and
// the ledger disagree, and stops the run.
func simulateSend(ctx context.Context, g *simulate.Generator, c simulateConfig, stderr io.Writer) (*simulate.Summary, error) {
	s, closeFn, err := dial(c.URL, c.NATSURL, c.NATSNKey, c.TokenFile, c.Timeout)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	limit := rate.NewLimiter(rate.Inf, c.Batch)
	if c.Rate > 0 {
		limit = rate.NewLimiter(rate.Limit(c.Rate), c.Batch)
	}
	prog := newProgress(stderr, "simulate")
	var t tally
	var batch [][]byte
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := limit.WaitN(ctx, len(batch)); err != nil {
			return err
		}
		results, err := s.send(ctx, batch)
		if err != nil {
			return err
		}
		for i, r := range results {
			if r.Err != nil {
				return fmt.Errorf("the ledger rejected %s: %s: %s", batch[i], r.Err.Code, r.Err.Message)
			}
		}
		t.add(results)
		batch = batch[:0]
		prog.maybe(t.Appended+t.Duplicates, "%d events sent: %d appended, %d duplicates", t.Appended+t.Duplicates, t.Appended, t.Duplicates)
		return nil
	}
	sum, err := g.Run(ctx, func(e *hoso.Event) error {
		batch = append(batch, trimNewline(simulate.AppendLine(nil, e)))
		if len(batch) >= c.Batch {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	if err != nil {
		return nil, err
	}
	prog.line(t.Appended+t.Duplicates, "done: %d appended, %d duplicates", t.Appended, t.Duplicates)
	return sum, nil
}

func trimNewline(b []byte) []byte { return b[:len(b)-1] }
