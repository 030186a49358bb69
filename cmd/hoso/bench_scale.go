package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/hoso-ledger/hoso/simulate"
)

// The scale measurement (`hoso bench --scale N`) runs in two child
// processes of the bench, so that each figure is one process's own, as an
// operator sees it: "load" imports N simulated dossiers into a fresh ledger
// as `hoso import --data` does (the store and the ingest service, bulk
// batches), and stops; "serve" starts the whole process on that data
// directory cold, lets the read model and the Merkle tree catch up with the
// stream, re-sends a sample of the history (each answered from the
// dossier's history as a duplicate) and runs reports, then reads its
// resident memory. Both print one JSON line.

// scaleBatch is the events per bulk batch of the load.
const scaleBatch = 5000

// scaleResendSample is how many events of the history the serve phase
// re-sends through the live path.
const scaleResendSample = 20_000

// scalePhase is what one phase measured.
type scalePhase struct {
	Phase      string  `json:"phase"`
	Dossiers   int     `json:"dossiers"`
	Events     uint64  `json:"events"`
	Seconds    float64 `json:"seconds"`
	OpenSec    float64 `json:"open_seconds,omitempty"`
	CatchUpSec float64 `json:"catch_up_seconds,omitempty"`
	Duplicates int     `json:"duplicates,omitempty"`
	// AppendSec is, in the restart phase, the time from the start until a
	// new event was appended; IndexSnapshotSeq where the dossier index's
	// snapshot stood (the events after it were read at open).
	AppendSec        float64 `json:"append_seconds,omitempty"`
	IndexSnapshotSeq uint64  `json:"index_snapshot_seq,omitempty"`
	PeakRSS          uint64  `json:"peak_rss"`
	RSS              uint64  `json:"rss"`
	HeapInuse        uint64  `json:"heap_inuse"`
	MemLimit         int64   `json:"go_memory_limit"`
}

// scaleGenerator simulates dossiers received over the given number of
// years up to the end of 2024 (1: 2024 alone).
func scaleGenerator(m *Main, dossiers, years int) (*simulate.Generator, error) {
	to, _ := time.Parse(time.DateOnly, benchTo)
	from := time.Date(to.Year()-max(years, 1)+1, time.January, 1, 0, 0, 0, 0, time.UTC)
	return simulate.New(m.Units, m.Calendar, simulate.Config{Scope: benchUnit, From: from, To: to,
		Dossiers: dossiers, Seed: 1, LateShare: simulate.DefaultLateShare, Level: hoso.LevelDistrict})
}

// benchScale runs both phases in child processes and prints their table.
func benchScale(ctx context.Context, c benchConfig, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var phases []scalePhase
	// The last restart is the baseline: without the dossier index's
	// snapshot, which the one before left, the index is read from the
	// whole stream.
	for i, phase := range []string{"load", "serve", "restart", "restart"} {
		if i == 3 {
			if err := os.Remove(filepath.Join(c.DataDir, "ledger", indexSnapshotFile)); err != nil && c.SubjectBuckets > 0 {
				return err
			}
		}
		fmt.Fprintf(stderr, "bench: scale %s phase, %d dossiers…\n", phase, c.Scale)
		cmd := exec.CommandContext(ctx, exe, "bench", "--scale", strconv.Itoa(c.Scale), "--scale-phase", phase,
			"--data", c.DataDir, "--memory-limit", c.MemoryLimit.String(), "--memprofile", c.MemProfile,
			"--subject-buckets", strconv.Itoa(c.SubjectBuckets), "--scale-years", strconv.Itoa(c.ScaleYears),
			"--dedup-window", c.DedupWindow.String())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("scale %s phase: %w", phase, err)
		}
		var p scalePhase
		if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &p); err != nil {
			return fmt.Errorf("scale %s phase answered %q: %w", phase, out.Bytes(), err)
		}
		phases = append(phases, p)
	}
	disk := dirSize(c.DataDir)
	table := scaleTable(phases, c, disk)
	fmt.Fprint(stdout, table)
	if c.Out != "" {
		return os.WriteFile(c.Out, []byte(table), 0o644)
	}
	return nil
}

func scaleTable(phases []scalePhase, c benchConfig, disk int64) string {
	mib := func(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) + " MiB" }
	load, serve, restart, cold := phases[0], phases[1], phases[2], phases[3]
	var b strings.Builder
	flags := ""
	if c.SubjectBuckets > 0 {
		flags = " --subject-buckets " + strconv.Itoa(c.SubjectBuckets)
	}
	if c.ScaleYears > 1 {
		flags += " --scale-years " + strconv.Itoa(c.ScaleYears)
	}
	if c.DedupWindow > 0 {
		flags += " --dedup-window " + c.DedupWindow.String()
	}
	fmt.Fprintf(&b, "Machine: %s/%s, %d CPUs, %s. Command: `hoso bench --scale %d --memory-limit %s%s`: %d dossiers, %d events, %s on disk.\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), c.Scale, c.MemoryLimit.String(), flags, load.Dossiers, load.Events, mib(uint64(disk)))
	fmt.Fprintln(&b, "| phase | time | peak resident (VmHWM) | resident at the end (VmRSS) | Go heap in use |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|")
	fmt.Fprintf(&b, "| load: an import into a fresh ledger (the store and the ingest service, as hoso import --data), bulk batches of %d (includes the generator) | %.0f s (%.0f events/s) | %s | %s | %s |\n",
		scaleBatch, load.Seconds, float64(load.Events)/load.Seconds, mib(load.PeakRSS), mib(load.RSS), mib(load.HeapInuse))
	fmt.Fprintf(&b, "| serve: the whole process, cold (%.1f s to open, %.1f s until the read model and the Merkle tree caught up), %d events re-sent (all duplicates), %d reports | %.0f s | %s | %s | %s |\n",
		serve.OpenSec, serve.CatchUpSec, serve.Duplicates, len(benchReports)*4, serve.Seconds, mib(serve.PeakRSS), mib(serve.RSS), mib(serve.HeapInuse))
	fmt.Fprintf(&b, "| restart: the whole process again on its read model and tree (%.1f s to open, %.1f s until a new event was appended; dossier index from its snapshot at seq %d, %d events of the stream read) | %.0f s | %s | %s | %s |\n",
		restart.OpenSec, restart.AppendSec, restart.IndexSnapshotSeq, restart.Events-1-restart.IndexSnapshotSeq, restart.Seconds, mib(restart.PeakRSS), mib(restart.RSS), mib(restart.HeapInuse))
	fmt.Fprintf(&b, "| restart again without the dossier index's snapshot, as before it existed (%.1f s to open, %.1f s until a new event was appended; the index read from the whole stream) | %.0f s | %s | %s | %s |\n",
		cold.OpenSec, cold.AppendSec, cold.Seconds, mib(cold.PeakRSS), mib(cold.RSS), mib(cold.HeapInuse))
	return b.String()
}

// benchScalePhase is one child process of benchScale.
func benchScalePhase(ctx context.Context, c benchConfig, stdout, stderr io.Writer) error {
	m := NewMain()
	m.Config.DataDir = filepath.Join(c.DataDir, "ledger")
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "error"
	m.Config.MemoryLimit = c.MemoryLimit
	m.Config.SubjectBuckets = c.SubjectBuckets
	// The load is an import into a ledger that is not serving (hoso import
	// --data): the store and the ingest service only. The serve phase's
	// whole process then builds the read model and the Merkle tree.
	m.Config.ReadModel = c.ScalePhase != "load"
	if c.DedupWindow > 0 {
		m.Config.DuplicateWindow = c.DedupWindow
	}
	// The history is past (it ends with 2024): the deadline watcher would
	// mark every dossier still open as overdue, which is not measured here.
	m.Config.DeadlineInterval = 0
	start := time.Now()
	latest := ""
	if c.MemProfile != "" {
		latest = c.MemProfile + "." + c.ScalePhase + ".latest"
	}
	stopSampling := sampleMemory(stderr, c.ScalePhase, start, 30*time.Second, latest)
	defer stopSampling()
	if err := m.Open(ctx); err != nil {
		return err
	}
	defer m.Close()
	p := scalePhase{Phase: c.ScalePhase, Dossiers: c.Scale, OpenSec: time.Since(start).Seconds()}
	g, err := scaleGenerator(m, c.Scale, c.ScaleYears)
	if err != nil {
		return err
	}
	switch c.ScalePhase {
	case "load":
		p.OpenSec = 0
		err = scaleLoad(ctx, m, g, c.MemProfile, stderr)
	case "serve":
		if err = waitProjection(ctx, m); err == nil {
			p.CatchUpSec = time.Since(start).Seconds() - p.OpenSec
			p.Duplicates, err = scaleServe(ctx, m, g)
		}
	case "restart":
		p.IndexSnapshotSeq = m.Store.IndexSnapshotSeq()
		if err = scaleAppendOne(ctx, m); err == nil {
			p.AppendSec = time.Since(start).Seconds()
			err = waitProjection(ctx, m)
		}
	default:
		return fmt.Errorf("scale-phase: want load, serve or restart, got %q", c.ScalePhase)
	}
	if err != nil {
		return err
	}
	if m.Config.ReadModel {
		if err = waitProjection(ctx, m); err != nil {
			return err
		}
	}
	p.Seconds = time.Since(start).Seconds()
	if p.Events, err = m.Store.LastSeq(ctx); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.HeapInuse = ms.HeapInuse
	p.RSS, p.PeakRSS = residentBytes(), peakResidentBytes()
	p.MemLimit = readMemoryLimit()
	if c.MemProfile != "" {
		if err := writeHeapProfile(c.MemProfile + "." + c.ScalePhase); err != nil {
			return err
		}
	}
	return json.NewEncoder(stdout).Encode(p)
}

// sampleMemory prints the process's resident memory, its peak and the Go
// heap every interval, until the function it returns is called, so a long
// phase shows where its memory goes; with profile, it also writes the Go
// heap's profile there each time (the last one stays).
func sampleMemory(w io.Writer, phase string, start time.Time, interval time.Duration, profile string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/total:bytes"}}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(live)
			sqlUsed, sqlPeak := projections.SQLiteMemory(true)
			fmt.Fprintf(w, "bench: %s %4.0f s: resident %d MiB (peak %d MiB), Go heap live %d MiB, Go total %d MiB, SQLite %d MiB (peak %d MiB)\n",
				phase, time.Since(start).Seconds(), residentBytes()>>20, peakResidentBytes()>>20,
				live[0].Value.Uint64()>>20, live[1].Value.Uint64()>>20, sqlUsed>>20, sqlPeak>>20)
			if profile != "" {
				if err := writeHeapProfile(profile); err != nil {
					fmt.Fprintf(w, "bench: %s: heap profile: %v\n", phase, err)
				}
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// scaleLoad appends the generator's history in bulk batches.
//
// With memProfile it also writes the Go heap's profile at every million
// events, to memProfile.load.<millions>M.
func scaleLoad(ctx context.Context, m *Main, g *simulate.Generator, memProfile string, stderr io.Writer) error {
	batch := make([]*hoso.Event, 0, scaleBatch)
	var sent int
	start := time.Now()
	flush := func() error {
		for _, r := range m.Ingester.AppendBulk(ctx, batch) {
			if r.Err != nil {
				return r.Err
			}
		}
		if sent += len(batch); sent/1_000_000 != (sent-len(batch))/1_000_000 {
			fmt.Fprintf(stderr, "bench: %d events loaded, %.0f events/s, resident %d MiB\n",
				sent, float64(sent)/time.Since(start).Seconds(), residentBytes()>>20)
			if memProfile != "" {
				if err := writeHeapProfile(fmt.Sprintf("%s.load.%dM", memProfile, sent/1_000_000)); err != nil {
					return err
				}
			}
		}
		batch = batch[:0]
		return nil
	}
	_, err := g.Run(ctx, func(e *hoso.Event) error {
		if batch = append(batch, e); len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// scaleServe re-sends the first events of the history through the live
// path (with Msg-Id; each is found in its dossier's history) and runs
// reports, as a serving process would.
func scaleServe(ctx context.Context, m *Main, g *simulate.Generator) (int, error) {
	var sample []*hoso.Event
	_, err := g.Run(ctx, func(e *hoso.Event) error {
		if len(sample) == scaleResendSample {
			return errSampleFull
		}
		sample = append(sample, e)
		return nil
	})
	if err != nil && err != errSampleFull {
		return 0, err
	}
	dups := 0
	for i := 0; i < len(sample); i += 1000 {
		for _, r := range m.Ingester.AppendBatch(ctx, sample[i:min(i+1000, len(sample))]) {
			if r.Err != nil {
				return dups, r.Err
			}
			if !r.Result.Duplicate {
				return dups, fmt.Errorf("re-sent event of %s was appended again", r.Result.Dossier)
			}
			dups++
		}
	}
	for i := range len(benchReports) * 4 {
		if _, err := m.DB.Report(ctx, m.Units, benchReports[i%len(benchReports)]); err != nil {
			return dups, err
		}
	}
	return dups, nil
}

var errSampleFull = fmt.Errorf("sample full")

// scaleAppendOne appends one new event, of a dossier of its own, through
// the live path: the restart phase's proof that the ledger takes appends.
func scaleAppendOne(ctx context.Context, m *Main) error {
	e, err := hoso.DecodeEvent(fmt.Appendf(nil, `{"type":"received","dossier":"restart-%d","unit":"00127","at":"2024-12-31T09:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`, time.Now().UnixNano()))
	if err != nil {
		return err
	}
	res, err := m.Events.Append(ctx, e)
	if err == nil && res.Duplicate {
		err = fmt.Errorf("the restart's new event of %s was answered as a duplicate", res.Dossier)
	}
	return err
}

// waitProjection waits until the read model, and the Merkle tree when it
// is kept, have applied the whole stream.
func waitProjection(ctx context.Context, m *Main) error {
	treeBehind := func() bool {
		if m.Transparency == nil {
			return false
		}
		last, err := m.Store.LastSeq(ctx)
		return err != nil || m.Transparency.TreeSize() < last
	}
	for m.Projector.CaughtUp(ctx) != nil || treeBehind() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// peakResidentBytes is the process's peak resident set size (VmHWM).
func peakResidentBytes() uint64 { return procStatusBytes("VmHWM:") }

// procStatusBytes reads one kB field of /proc/self/status; 0 where /proc is
// not available.
func procStatusBytes(field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// readMemoryLimit is the Go memory limit in force.
func readMemoryLimit() int64 { return debug.SetMemoryLimit(-1) }

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(f)
}
