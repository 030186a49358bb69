package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchResult is one measured figure next to its raw baseline.
type benchResult struct {
	Name, Baseline string
	Value, Base    float64 // Base is 0 when there is no baseline
	Unit           string
	Rate           bool // higher is better (a rate); otherwise lower is
	Note           string
}

// ratio is hoso's figure over the baseline's.
func (r benchResult) ratio() string {
	if r.Base == 0 {
		return "—"
	}
	return strconv.FormatFloat(r.Value/r.Base, 'f', 2, 64) + "×"
}

type benchConfig struct {
	Events  int
	Senders int
	Batch   int
	// BatchSenders is how many batch requests are in flight at once.
	BatchSenders int
	Quick        bool
	Out          string
	DataDir      string
	// Dossiers is the size of the read-model measurements; Reports how
	// many reports are timed for the latency percentiles.
	Dossiers int
	Reports  int
	// Scale, when set, measures only the resident memory of a ledger of
	// that many dossiers, loaded then restarted (bench_scale.go).
	Scale       int
	ScalePhase  string
	MemoryLimit memoryLimit
	MemProfile  string
	CPUProfile  string
	// SubjectBuckets lays out the --scale ledger's stream (serve's flag);
	// ScaleYears spreads its dossiers over that many years up to 2024;
	// DedupWindow, when set, is its stream's Msg-Id window.
	SubjectBuckets int
	ScaleYears     int
	DedupWindow    time.Duration
	// Only limits the run to one group of figures: read-model, ingest (both
	// processes) or ingest-only (the ingest-only process).
	Only string
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c benchConfig
	fs.IntVar(&c.Events, "events", 50_000, "events per measurement")
	fs.IntVar(&c.Senders, "senders", 32, "concurrent senders of single events")
	fs.IntVar(&c.Batch, "batch", 1000, "events per NDJSON batch")
	fs.IntVar(&c.BatchSenders, "batch-senders", 2, "concurrent senders of NDJSON batches, each waiting for its answer")
	fs.BoolVar(&c.Quick, "quick", false, "small sizes, for a smoke test (under a minute)")
	fs.StringVar(&c.Out, "out", "", "also write the Markdown table to this file")
	fs.StringVar(&c.DataDir, "data", "", "scratch directory (default: a new temporary one, removed after)")
	fs.IntVar(&c.Dossiers, "dossiers", 100_000, "simulated dossiers for the rebuild, report and memory figures (1000000, 10000000 for the scale figures)")
	fs.IntVar(&c.Reports, "reports", 200, "reports timed for the latency percentiles")
	c.MemoryLimit = memoryLimitAuto
	fs.IntVar(&c.Scale, "scale", 0, "measure only resident memory: load this many dossiers, restart, serve (e.g. 1000000, 10000000)")
	fs.StringVar(&c.ScalePhase, "scale-phase", "", "internal: run one phase (load, serve or restart) of --scale in this process")
	fs.Var(&c.MemoryLimit, "memory-limit", "Go heap limit of the --scale processes, as serve's --memory-limit")
	fs.IntVar(&c.ScaleYears, "scale-years", 1, "with --scale: spread the dossiers over this many years up to 2024")
	fs.DurationVar(&c.DedupWindow, "dedup-window", 0, "with --scale: the stream's Msg-Id window (default serve's, 24h)")
	fs.IntVar(&c.SubjectBuckets, "subject-buckets", 0, "with --scale: lay the ledger's stream out in this many bucket subjects, as serve's flag")
	fs.StringVar(&c.MemProfile, "memprofile", "", "with --scale: write each phase's Go heap profile to this file, suffixed .load and .serve")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the measurements to this file (with --scale: of one phase run by hand with --scale-phase)")
	fs.StringVar(&c.Only, "only", "", "measure one group only: read-model, ingest (both processes) or ingest-only")
	if err := parseWithEnvPrefix(fs, args, "HOSO_BENCH_"); err != nil {
		return err
	}
	switch c.Only {
	case "", "read-model", "ingest", "ingest-only":
	default:
		return fmt.Errorf("--only: %q is not read-model, ingest or ingest-only", c.Only)
	}
	if c.Quick {
		c.Events, c.Dossiers, c.Reports = 2000, 3000, 20
	}
	if c.DataDir == "" {
		dir, err := os.MkdirTemp("", "hoso-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.DataDir = dir
	}
	if c.Scale > 0 && c.ScalePhase == "" {
		return benchScale(ctx, c, stdout, stderr)
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.ScalePhase != "" {
		return benchScalePhase(ctx, c, stdout, stderr)
	}
	// The read model first: its memory figure is the process's, before
	// the ingest measurements add their own streams.
	var results []benchResult
	if c.Only == "" || c.Only == "read-model" {
		rm, err := benchReadModel(ctx, c, stderr)
		if err != nil {
			return err
		}
		results = append(results, rm...)
	}
	if c.Only != "read-model" {
		ingest, err := benchIngest(ctx, c, stderr)
		if err != nil {
			return err
		}
		results = append(results, ingest...)
	}
	table := benchTable(results, c)
	fmt.Fprint(stdout, table)
	if c.Out != "" {
		return os.WriteFile(c.Out, []byte(table), 0o644)
	}
	return nil
}

func benchTable(results []benchResult, c benchConfig) string {
	var b strings.Builder
	only := ""
	if c.Only != "" {
		only = " --only " + c.Only
	}
	fmt.Fprintf(&b, "Machine: %s/%s, %d CPUs, %s. Command: `hoso bench --events %d --senders %d --batch %d --batch-senders %d --dossiers %d --reports %d%s`.\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), c.Events, c.Senders, c.Batch, c.BatchSenders, c.Dossiers, c.Reports, only)
	fmt.Fprintln(&b, "| measurement | hoso | raw baseline (same run) | baseline | ratio (hoso ÷ baseline) |")
	fmt.Fprintln(&b, "|---|---:|---|---:|---:|")
	for _, r := range results {
		better := "lower is better"
		if r.Rate {
			better = "higher is better"
		}
		base := "—"
		if r.Base != 0 {
			base = human(r.Base) + " " + r.Unit
		}
		note := better
		if r.Note != "" {
			note = r.Note + "; " + better
		}
		fmt.Fprintf(&b, "| %s (%s) | %s %s | %s | %s | %s |\n", r.Name, note, human(r.Value), r.Unit, r.Baseline, base, r.ratio())
	}
	return b.String()
}

// human rounds to whole units, keeping two decimals below 10.
func human(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(float64(int64(v+0.5)), 'f', 0, 64)
}

// benchEvents returns n received events for distinct dossiers, as desk
// systems would send them as they happen: dated in the hour before start at
// wards of Hà Nội as they stand then, due days later. (Past-due dossiers
// would set the deadline watcher appending overdue events beside the load.)
func benchEvents(prefix string, n int, units *hoso.Units, start time.Time) [][]byte {
	var wards []string
	for _, u := range units.Descendants("01", hoso.LevelWard, start) {
		if wards = append(wards, u.Code); len(wards) == 8 {
			break
		}
	}
	out := make([][]byte, n)
	for i := range n {
		at := start.Add(-time.Hour + time.Duration(i%3600)*time.Second).In(hoso.VietnamZone).Format(time.RFC3339)
		out[i] = fmt.Appendf(nil, `{"type":"received","dossier":"%s-%07d","unit":"%s","at":"%s","procedure":"1.001776","channel":"online","days":5}`,
			prefix, i, wards[i%len(wards)], at)
	}
	return out
}

// openBenchMain opens a ledger on free loopback ports in dir, logging
// errors only, for a measurement.
func openBenchMain(ctx context.Context, dir string) (*Main, error) {
	return openBenchProcess(ctx, dir, true)
}

// openBenchProcess is openBenchMain for a whole process (readModel) or an
// ingest-only one.
func openBenchProcess(ctx context.Context, dir string, readModel bool) (*Main, error) {
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.ReadModel = readModel
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "error"
	if err := m.Open(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// benchIngest measures the four ingest figures twice: on a whole process,
// where the projector, the Merkle tree and the deadline watcher share the
// cores with the ingest doors, then on an ingest-only process (serve
// --read-model=false), which like the raw baselines does nothing else with
// the events.
func benchIngest(ctx context.Context, c benchConfig, log io.Writer) ([]benchResult, error) {
	var whole []benchResult
	if c.Only != "ingest-only" {
		var err error
		if whole, err = benchIngestProcess(ctx, c, log, true); err != nil {
			return nil, err
		}
	}
	only, err := benchIngestProcess(ctx, c, log, false)
	return append(whole, only...), err
}

// benchRounds is how many parts each ingest figure and its raw baseline
// are measured in, alternately, so that a change of load on a shared
// machine weighs on both alike.
const benchRounds = 5

// ingestMeasure is one ingest figure: the way hoso is sent events, and the
// raw baseline it is compared with, which publishes the same bytes to
// subject(i) or does the same number of something else.
type ingestMeasure struct {
	prefix, name, baseline string
	send                   func(evs [][]byte) error
	raw                    func(subject func(i int) string, evs [][]byte) error
}

func benchIngestProcess(ctx context.Context, c benchConfig, log io.Writer, readModel bool) ([]benchResult, error) {
	dir, process := "ledger", "whole process (read model, Merkle tree, deadline watcher)"
	if !readModel {
		dir, process = "ingest-only", "ingest-only process (serve --read-model=false)"
	}
	m, err := openBenchProcess(ctx, filepath.Join(c.DataDir, dir), readModel)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	start := m.Now()
	js := m.Store.JetStream()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH_RAW", Subjects: []string{"bench.raw.>"}, Storage: jetstream.FileStorage,
		Duplicates: eventstore.DefaultDuplicateWindow, DenyDelete: true, DenyPurge: true, AllowDirect: true,
	}); err != nil {
		return nil, err
	}
	// The senders authenticate as a national desk, as real desks do: the
	// figures include the token's check over HTTP, and over NATS the
	// lookup of the desk its subject names.
	desk := hoso.Principal{Name: "bench-desk", Role: hoso.RoleDesk}
	token, err := m.Tokens.CreateToken(ctx, desk)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(m.Store.ClientURL(), nats.Token(token))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	deskSubject, bearer := eventstore.DeskSubject(desk.Name), bearerHeader(token)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Senders * 2}}
	rawAsync := func(subject func(int) string, evs [][]byte) error {
		return rawAsyncPublish(ctx, js, subject, evs)
	}
	rawSync := func(subject func(int) string, evs [][]byte) error {
		return rawSyncPublish(ctx, js, subject, evs, c.Senders)
	}
	postSingles := func(evs [][]byte) error {
		return fanOut(len(evs), c.Senders, func(i int) error { return postOne(client, m.HTTP.URL(), bearer, evs[i]) })
	}
	measures := []ingestMeasure{{
		prefix: "HB", name: fmt.Sprintf("HTTP NDJSON batches of %d, %d senders", c.Batch, c.BatchSenders), baseline: "JetStream async publish", raw: rawAsync,
		send: func(evs [][]byte) error {
			return fanOut((len(evs)+c.Batch-1)/c.Batch, c.BatchSenders, func(b int) error {
				i := b * c.Batch
				return postBatch(client, m.HTTP.URL(), bearer, bytes.Join(evs[i:min(i+c.Batch, len(evs))], []byte("\n")))
			})
		},
	}, {
		prefix: "NB", name: fmt.Sprintf("NATS requests with NDJSON batches of %d, %d senders", c.Batch, c.BatchSenders), baseline: "JetStream async publish", raw: rawAsync,
		send: func(evs [][]byte) error {
			return fanOut((len(evs)+c.Batch-1)/c.Batch, c.BatchSenders, func(b int) error {
				i := b * c.Batch
				msg := nats.NewMsg(deskSubject)
				msg.Header.Set("Content-Type", "application/x-ndjson")
				msg.Data = bytes.Join(evs[i:min(i+c.Batch, len(evs))], []byte("\n"))
				reply, err := nc.RequestMsg(msg, time.Minute)
				if err != nil {
					return err
				}
				if bytes.Contains(reply.Data, []byte(`"error"`)) {
					return fmt.Errorf("NATS batch: %.300s", reply.Data)
				}
				return nil
			})
		},
	}, {
		prefix: "HS", name: fmt.Sprintf("single events over HTTP, %d senders", c.Senders),
		baseline: fmt.Sprintf("JetStream sync publish, %d publishers", c.Senders), raw: rawSync, send: postSingles,
	}, {
		prefix: "NS", name: fmt.Sprintf("single events over NATS requests, %d senders", c.Senders),
		baseline: fmt.Sprintf("JetStream sync publish, %d publishers", c.Senders), raw: rawSync,
		send: func(evs [][]byte) error {
			return fanOut(len(evs), c.Senders, func(i int) error {
				reply, err := nc.Request(deskSubject, evs[i], time.Minute)
				if err != nil {
					return err
				}
				if bytes.Contains(reply.Data, []byte(`"error"`)) {
					return fmt.Errorf("NATS request: %s", reply.Data)
				}
				return nil
			})
		},
	}}
	if !readModel {
		// What HTTP round trips cost by themselves, between a client and a
		// server in one process: the ceiling of single events over HTTP.
		measures = append(measures, ingestMeasure{
			prefix: "HH", name: fmt.Sprintf("single events over HTTP, %d senders", c.Senders),
			baseline: fmt.Sprintf("HTTP round trips alone (GET /healthz), %d senders", c.Senders), send: postSingles,
			raw: func(_ func(int) string, evs [][]byte) error {
				return fanOut(len(evs), c.Senders, func(int) error { return getHealthz(client, m.HTTP.URL()) })
			},
		})
	}
	var results []benchResult
	for _, x := range measures {
		fmt.Fprintf(log, "bench: %s: ingest, %s, against %s…\n", process, x.name, x.baseline)
		// The same bytes for both, with the same per-dossier headers.
		evs := benchEvents(x.prefix, c.Events, m.Units, start)
		rawEvs := benchEvents("R"+x.prefix, c.Events, m.Units, start)
		subject := func(i int) string { return "bench.raw." + x.prefix + "." + strconv.Itoa(i) }
		var hosoTime, rawTime time.Duration
		rounds := max(1, min(benchRounds, c.Events/(2*c.Batch)))
		for r := range rounds {
			from, to := r*c.Events/rounds, (r+1)*c.Events/rounds
			t := time.Now()
			if err := x.raw(func(i int) string { return subject(from + i) }, rawEvs[from:to]); err != nil {
				return nil, err
			}
			rawTime += time.Since(t)
			t = time.Now()
			if err := x.send(evs[from:to]); err != nil {
				return nil, err
			}
			hosoTime += time.Since(t)
		}
		results = append(results, benchResult{
			Name: "ingest, " + process + ", " + x.name, Baseline: x.baseline + alternation(rounds),
			Value: float64(c.Events) / hosoTime.Seconds(), Base: float64(c.Events) / rawTime.Seconds(), Unit: "events/s", Rate: true,
		})
	}
	return results, nil
}

// alternation says how a figure and its baseline were measured.
func alternation(rounds int) string {
	if rounds == 1 {
		return " (measured just before)"
	}
	return fmt.Sprintf(" (alternating with it, %d parts each)", rounds)
}

func fanOut(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

func rawMsg(subject string, data []byte) *nats.Msg {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, subject)
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	return msg
}

// rawAsyncPublish publishes evs[i] to subject(i), each a new subject,
// asynchronously, and waits for every acknowledgement.
func rawAsyncPublish(ctx context.Context, js jetstream.JetStream, subject func(i int) string, evs [][]byte) error {
	for i := 0; i < len(evs); {
		_, err := js.PublishMsgAsync(rawMsg(subject(i), evs[i]))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			// The window of unacknowledged messages stayed full past the
			// stall wait (a loaded machine): wait for it to drain and go on
			// with the same message, as a real publisher would.
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return err
		}
		i++
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rawSyncPublish publishes evs[i] to subject(i) from concurrent publishers,
// each waiting for its acknowledgement.
func rawSyncPublish(ctx context.Context, js jetstream.JetStream, subject func(i int) string, evs [][]byte, publishers int) error {
	return fanOut(len(evs), publishers, func(i int) error {
		_, err := js.PublishMsg(ctx, rawMsg(subject(i), evs[i]))
		return err
	})
}

// postEvents posts body to /v1/events as the desk whose Authorization
// header value (bearer) it is. That value is made once and set on each
// request, as a desk system would, rather than by a RoundTripper cloning
// each request or by building it anew: the senders share the machine with
// the server, and what they spend is not the server's. (Content-Type is
// set as before tokens were, so that the figures compare.)
func postEvents(client *http.Client, url string, bearer []string, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header["Authorization"] = bearer
	return client.Do(req)
}

// bearerHeader is the Authorization header value of token.
func bearerHeader(token string) []string { return []string{"Bearer " + token} }

func postBatch(client *http.Client, url string, bearer []string, body []byte) error {
	b, status, err := answer(postEvents(client, url, bearer, "application/x-ndjson", body))
	if err == nil && (status != 200 || bytes.Contains(b, []byte(`"error"`))) {
		err = fmt.Errorf("batch: %d %.300s", status, b)
	}
	return err
}

func getHealthz(client *http.Client, url string) error {
	b, status, err := answer(client.Get(url + "/healthz"))
	if err == nil && status != 200 {
		err = fmt.Errorf("healthz: %d %s", status, b)
	}
	return err
}

func postOne(client *http.Client, url string, bearer []string, body []byte) error {
	b, status, err := answer(postEvents(client, url, bearer, "application/json", body))
	if err == nil && status != 201 {
		err = fmt.Errorf("single event: %d %s", status, b)
	}
	return err
}

// answer reads a response's whole body, so that the connection is reused,
// and its status.
func answer(resp *http.Response, err error) ([]byte, int, error) {
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}
