package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/hoso-ledger/hoso/simulate"
	"github.com/nats-io/nats.go/jetstream"
)

// benchYear is the simulated year of the read-model measurements: Hà Nội,
// 2024, as the demo.
const (
	benchUnit = "01"
	benchFrom = "2024-01-01"
	benchTo   = "2024-12-31"
)

// benchReports is the report mix timed for latency: the shapes of
// projections' BenchmarkReport, over the simulated year.
var benchReports = []projections.ReportQuery{
	{Unit: "01", Level: hoso.LevelWard, From: "2024-01-01", To: "2024-12-31"},
	{Unit: "01", Level: hoso.LevelDistrict, From: "2024-02-17", To: "2024-11-09"},
	{Unit: "004", Level: hoso.LevelWard, From: "2024-03-01", To: "2024-03-31"},
	{From: "2024-01-01", To: "2024-12-31"},
	{Unit: "01", From: "2024-04-01", To: "2024-06-30", By: projections.ByProcedure},
}

// benchReadModel loads c.Dossiers simulated dossiers into a new ledger,
// then measures the projection rebuild against a raw JetStream read and a
// raw SQLite insert, report latency against a naive GROUP BY over a plain
// events table, and the process's resident memory.
func benchReadModel(ctx context.Context, c benchConfig, log io.Writer) ([]benchResult, error) {
	step := func(format string, args ...any) { fmt.Fprintf(log, "bench: "+format+"…\n", args...) }
	rssEmpty := residentBytes()
	m, err := openBenchMain(ctx, filepath.Join(c.DataDir, "readmodel"))
	if err != nil {
		return nil, err
	}
	defer m.Close()

	step("loading %d simulated dossiers through the ingest service", c.Dossiers)
	from, _ := time.Parse(time.DateOnly, benchFrom)
	to, _ := time.Parse(time.DateOnly, benchTo)
	g, err := simulate.New(m.Units, m.Calendar, simulate.Config{Scope: benchUnit, From: from, To: to,
		Dossiers: c.Dossiers, Seed: 1, LateShare: simulate.DefaultLateShare, Level: hoso.LevelDistrict})
	if err != nil {
		return nil, err
	}
	batch := make([]*hoso.Event, 0, 1000)
	flush := func() error {
		for _, r := range m.Ingester.AppendBatch(ctx, batch) {
			if r.Err != nil {
				return r.Err
			}
		}
		batch = batch[:0]
		return nil
	}
	var loadRate float64
	var sum *simulate.Summary
	loadRate, err = timeRateFn(func() (int, error) {
		var err error
		sum, err = g.Run(ctx, func(e *hoso.Event) error {
			if batch = append(batch, e); len(batch) == cap(batch) {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if sum == nil {
			return 0, err
		}
		return int(sum.Events), err
	})
	if err != nil {
		return nil, err
	}
	events := int(sum.Events)
	// Let the live projector finish so that it does not compete with the
	// measurements below.
	for m.Projector.CaughtUp(ctx) != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Return freed memory first, so the figure is what the process needs
	// rather than garbage the collector has not yet handed back.
	debug.FreeOSMemory()
	rssLoaded := residentBytes()

	step("raw JetStream read of %d events", events)
	rawRead, err := timeRateFn(func() (int, error) { return rawStreamRead(ctx, m.Store.JetStream()) })
	if err != nil {
		return nil, err
	}
	step("projection rebuild")
	rebuildPath := filepath.Join(c.DataDir, "rebuild.db")
	rebuild, err := timeRateFn(func() (int, error) {
		return events, projections.Rebuild(ctx, m.Store, m.Units, rebuildPath, nil)
	})
	if err != nil {
		return nil, err
	}
	step("raw SQLite insert into a plain events table")
	naivePath := filepath.Join(c.DataDir, "naive.db")
	naive, err := sql.Open("sqlite3", "file:"+naivePath+"?_journal_mode=WAL&_synchronous=NORMAL")
	if err != nil {
		return nil, err
	}
	defer naive.Close()
	rawInsert, err := timeRateFn(func() (int, error) { return naiveLoad(ctx, m.Store, naive) })
	if err != nil {
		return nil, err
	}

	step("report latency, %d rounds", c.Reports)
	db, err := projections.Open(rebuildPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	p50, p99, err := latency(c.Reports, func(i int) error {
		_, err := db.Report(ctx, m.Units, benchReports[i%len(benchReports)])
		return err
	})
	if err != nil {
		return nil, err
	}
	n50, n99, err := latency(c.Reports, func(i int) error { return naiveReport(ctx, naive, benchReports[i%len(benchReports)]) })
	if err != nil {
		return nil, err
	}

	grown := float64(rssLoaded) - float64(rssEmpty)
	perMillion := grown / (1 << 20) / (float64(c.Dossiers) / 1e6)
	size := fmt.Sprintf("%d dossiers, %d events", c.Dossiers, events)
	return []benchResult{
		{Name: "bulk load through the ingest service (in process, batches of 1000), " + size, Baseline: "—", Value: loadRate, Unit: "events/s", Rate: true},
		{Name: "projection rebuild into a new SQLite file", Baseline: "raw JetStream read (ordered consumer)", Value: rebuild, Base: rawRead, Unit: "events/s", Rate: true},
		{Name: "projection rebuild into a new SQLite file", Baseline: "raw JetStream read + plain SQLite insert, one row per event", Value: rebuild, Base: rawInsert, Unit: "events/s", Rate: true},
		{Name: "report latency p50 (5 report shapes, " + size + ")", Baseline: "naive GROUP BY over a plain events table", Value: p50, Base: n50, Unit: "ms"},
		{Name: "report latency p99", Baseline: "naive GROUP BY over a plain events table", Value: p99, Base: n99, Unit: "ms"},
		{Name: "resident memory of the whole process per million dossiers: growth from before the ledger opened to after the load",
			Baseline: "—", Value: perMillion, Unit: "MiB",
			Note: fmt.Sprintf("%.0f MiB in all after the load, %.0f MiB before; meaningless below 100,000 dossiers, where fixed costs dominate",
				float64(rssLoaded)/(1<<20), float64(rssEmpty)/(1<<20))},
	}, nil
}

// timeRateFn times f and answers the rate of the count it returns.
func timeRateFn(f func() (int, error)) (float64, error) {
	start := time.Now()
	n, err := f()
	if err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// latency runs f n times and answers the 50th and 99th percentiles in ms.
func latency(n int, f func(i int) error) (p50, p99 float64, err error) {
	ds := make([]float64, n)
	for i := range n {
		start := time.Now()
		if err := f(i); err != nil {
			return 0, 0, err
		}
		ds[i] = float64(time.Since(start).Microseconds()) / 1000
	}
	slices.Sort(ds)
	at := func(q float64) float64 { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return at(0.50), at(0.99), nil
}

// rawStreamRead reads the whole ledger stream with an ordered consumer.
func rawStreamRead(ctx context.Context, js jetstream.JetStream) (int, error) {
	stream, err := js.Stream(ctx, "HOSO_EVENTS")
	if err != nil {
		return 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	n := 0
	for {
		msg, err := it.Next()
		if err != nil {
			return n, err
		}
		n++
		meta, err := msg.Metadata()
		if err != nil {
			return n, err
		}
		if meta.Sequence.Stream >= last {
			return n, nil
		}
	}
}

// naiveEvent is the few fields the plain table keeps.
type naiveEvent struct {
	Type    string `json:"type"`
	Dossier string `json:"dossier"`
	Unit    string `json:"unit"`
	At      string `json:"at"`
	Channel string `json:"channel"`
}

// naiveLoad reads the stream and inserts one plain row per event, in
// transactions of 10,000 rows: the least a read model must do.
func naiveLoad(ctx context.Context, ledger hoso.Ledger, db *sql.DB) (int, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE events (seq INTEGER PRIMARY KEY, dossier TEXT, type TEXT, unit TEXT, day TEXT, channel TEXT)`); err != nil {
		return 0, err
	}
	n := 0
	var tx *sql.Tx
	var stmt *sql.Stmt
	commit := func() error {
		if tx == nil {
			return nil
		}
		err := tx.Commit()
		tx, stmt = nil, nil
		return err
	}
	err := ledger.Read(ctx, 1, false, func(m hoso.LedgerEntry) error {
		if tx == nil {
			var err error
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				return err
			}
			if stmt, err = tx.PrepareContext(ctx, `INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)`); err != nil {
				return err
			}
		}
		var e naiveEvent
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return err
		}
		at, err := time.Parse(time.RFC3339, e.At)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, m.Seq, e.Dossier, e.Type, e.Unit, at.In(hoso.VietnamZone).Format(time.DateOnly), e.Channel); err != nil {
			return err
		}
		if n++; n%10_000 == 0 {
			return commit()
		}
		return nil
	})
	if err != nil {
		if tx != nil {
			tx.Rollback()
		}
		return n, err
	}
	return n, commit()
}

// naiveReport is the report a plain events table allows: counts per raw
// unit, type and channel in the period, by a GROUP BY over every event
// (no roll-up to the level, no classification, no carried-over stock).
func naiveReport(ctx context.Context, db *sql.DB, q projections.ReportQuery) error {
	rows, err := db.QueryContext(ctx, `SELECT unit, type, channel, count(*) FROM events WHERE day BETWEEN ? AND ? GROUP BY unit, type, channel`, q.From, q.To)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var unit, typ, channel sql.NullString
		var n int64
		if err := rows.Scan(&unit, &typ, &channel, &n); err != nil {
			return err
		}
	}
	return rows.Err()
}

// residentBytes is the process's resident set size (VmRSS), 0 where
// /proc is not available.
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
