package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/nats-io/nats.go/jetstream"
)

// benchSize reads a dataset size from the environment, so that the same
// benchmarks measure 1M and 10M dossiers on a machine that has the time.
func benchSize(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number of dossiers", name, v)
	}
	return n
}

// chunks generates n dossiers in chunks of at most 50,000, each chunk's
// events in time order and numbered after the previous chunk's, and hands
// each chunk to fn: memory stays bounded whatever n is.
func chunks(b *testing.B, n int, fn func([]hoso.LedgerEntry)) (events int) {
	b.Helper()
	u, _ := registry(b)
	var wards []string
	for _, w := range u.Descendants("01", hoso.LevelWard, vn(2020, 6, 1, 12, 0)) {
		wards = append(wards, w.Code)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	minutes := func(max int) time.Duration { return time.Duration(rng.IntN(max)) * time.Minute }
	seq := uint64(0)
	for first := 0; first < n; first += 50_000 {
		var evs []*hoso.Event
		for i := first; i < min(n, first+50_000); i++ {
			at := vn(2020, 1, 1, 8, 0).Add(minutes(360 * 24 * 60))
			d := newDossier(b, fmt.Sprintf("B%08d", i), wards[rng.IntN(len(wards))], fmt.Sprintf("1.%06d", rng.IntN(40)),
				[]hoso.Channel{hoso.ChannelDirect, hoso.ChannelOnline, hoso.ChannelPostal}[rng.IntN(3)],
				at, at.Add(24*time.Hour+minutes(15*24*60)))
			next := func() time.Time { return d.d.LastAt.Add(minutes(6 * 24 * 60)) }
			if to := wards[rng.IntN(len(wards))]; rng.IntN(10) == 0 && to != d.d.Owner {
				d.transfer(next(), to)
			}
			if rng.IntN(7) == 0 {
				d.pause(next())
				at := next()
				d.resume(at, at.Add(minutes(10*24*60)))
			}
			switch r := rng.IntN(20); {
			case r == 0:
				d.withdraw(next())
			case r < 17:
				d.resolve(next()).ret(next())
			}
			evs = append(evs, d.events...)
		}
		slices.SortStableFunc(evs, func(a, b *hoso.Event) int { return a.At.Compare(b.At) })
		msgs := make([]hoso.LedgerEntry, len(evs))
		for i, e := range evs {
			seq++
			e.Seq, e.RecordedAt = seq, e.At
			data, err := e.MarshalStored()
			if err != nil {
				b.Fatal(err)
			}
			msgs[i] = hoso.LedgerEntry{Seq: seq, Time: e.At, Data: data}
		}
		fn(msgs)
		events += len(msgs)
	}
	return events
}

// BenchmarkRebuildVsRaw measures, in one run over one stream, a rebuild of
// the read model against its raw baselines: an ordered-consumer read of
// the stream that does nothing with the messages, a raw SQLite insert of
// the same events (seq, dossier, bytes) in transactions of RebuildBatch,
// and a naive projector (one dossier upsert and one counter upsert per
// event, 1,000 events per transaction). The figure is events/s.
// HOSO_BENCH_REBUILD_DOSSIERS sets the size (default 20,000 dossiers,
// about 60,000 events).
func BenchmarkRebuildVsRaw(b *testing.B) {
	n := benchSize(b, "HOSO_BENCH_REBUILD_DOSSIERS", 20_000)
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	js := store.JetStream()
	total := chunks(b, n, func(msgs []hoso.LedgerEntry) {
		for _, m := range msgs {
			var e struct {
				Dossier string `json:"dossier"`
			}
			if err := json.Unmarshal(m.Data, &e); err != nil {
				b.Fatal(err)
			}
			if _, err := js.PublishAsync(eventstore.Subject(e.Dossier), m.Data); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish did not complete")
		}
	})
	if last, err := store.LastSeq(ctx); err != nil || last != uint64(total) {
		b.Fatalf("stream holds %d messages, want %d (%v)", last, total, err)
	}
	u, _ := registry(b)
	perSecond := func(b *testing.B) { b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "events/s") }

	b.Run("raw-jetstream-read", func(b *testing.B) {
		stream, err := js.Stream(ctx, eventstore.StreamName)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			it, err := cons.Messages(jetstream.PullMaxMessages(4096))
			if err != nil {
				b.Fatal(err)
			}
			for seen := 0; seen < total; seen++ {
				if _, err := it.Next(); err != nil {
					b.Fatal(err)
				}
			}
			it.Stop()
		}
		perSecond(b)
	})
	b.Run("raw-sqlite-insert", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			db := rawDB(b, filepath.Join(b.TempDir(), fmt.Sprintf("raw%d.db", i)),
				`CREATE TABLE events (seq INTEGER PRIMARY KEY, dossier TEXT NOT NULL, data BLOB NOT NULL)`)
			b.StartTimer()
			chunksOf(b, store, projections.RebuildBatch, func(tx *sql.Tx, m hoso.LedgerEntry, e *hoso.Event) error {
				_, err := tx.Exec(`INSERT INTO events VALUES (?, ?, ?)`, m.Seq, e.Dossier, m.Data)
				return err
			}, db)
			b.StopTimer()
			db.Close()
			b.StartTimer()
		}
		perSecond(b)
	})
	b.Run("naive-projector", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			db := rawDB(b, filepath.Join(b.TempDir(), fmt.Sprintf("naive%d.db", i)),
				`CREATE TABLE dossiers (code TEXT PRIMARY KEY, state TEXT NOT NULL, owner TEXT NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
				 CREATE TABLE counts (unit TEXT NOT NULL, day INTEGER NOT NULL, type TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (unit, day, type)) WITHOUT ROWID`)
			b.StartTimer()
			chunksOf(b, store, 1000, func(tx *sql.Tx, m hoso.LedgerEntry, e *hoso.Event) error {
				owner := e.Unit
				if e.ToUnit != "" {
					owner = e.ToUnit
				}
				if _, err := tx.Exec(`INSERT INTO dossiers VALUES (?, ?, ?, 1) ON CONFLICT (code) DO UPDATE SET state = excluded.state, owner = excluded.owner, version = version + 1`,
					e.Dossier, string(e.Type), owner); err != nil {
					return err
				}
				_, err := tx.Exec(`INSERT INTO counts VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1`, e.Unit, hoso.LocalDate(e.At), string(e.Type))
				return err
			}, db)
			b.StopTimer()
			db.Close()
			b.StartTimer()
		}
		perSecond(b)
	})
	b.Run("rebuild", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := projections.Rebuild(ctx, store, u, filepath.Join(b.TempDir(), fmt.Sprintf("rebuild%d.db", i)), nil); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
}

func rawDB(b *testing.B, path, schema string) *sql.DB {
	b.Helper()
	db, err := sql.Open("sqlite3", path+"?_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		b.Fatal(err)
	}
	return db
}

// chunksOf reads the whole stream and calls fn for every event inside
// transactions of size events.
func chunksOf(b *testing.B, store *eventstore.Store, size int, fn func(*sql.Tx, hoso.LedgerEntry, *hoso.Event) error, db *sql.DB) {
	b.Helper()
	var tx *sql.Tx
	n := 0
	err := store.Read(context.Background(), 1, false, func(m hoso.LedgerEntry) error {
		if tx == nil {
			var err error
			if tx, err = db.Begin(); err != nil {
				return err
			}
		}
		e, err := m.Event()
		if err != nil {
			return err
		}
		if err := fn(tx, m, e); err != nil {
			return err
		}
		if n++; n%size == 0 {
			err, tx = tx.Commit(), nil
			return err
		}
		return nil
	})
	if err == nil && tx != nil {
		err = tx.Commit()
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReportDistrictWards answers the report of quận Long Biên (004)
// by ward over five months, from the read model and, as the baseline, by a
// naive GROUP BY over a plain events table (indexed by day) holding the
// same events; it reports p50 and p99 in ms. The naive query only counts
// the period's flows (received by channel, resolved, withdrawn): carried
// over and pending would need every dossier folded, which a plain events
// table cannot give by a GROUP BY. HOSO_BENCH_REPORT_DOSSIERS sets the
// size (default 50,000 dossiers over Hà Nội's wards in 2020); the
// dossiers are written straight into SQLite, not through the stream, the
// read model as a rebuild writes it.
func BenchmarkReportDistrictWards(b *testing.B) {
	n := benchSize(b, "HOSO_BENCH_REPORT_DOSSIERS", 50_000)
	ctx := context.Background()
	u, _ := registry(b)
	dir := b.TempDir()
	load, err := projections.NewBulkLoader(ctx, u, filepath.Join(dir, "readmodel.db"))
	if err != nil {
		b.Fatal(err)
	}
	plain := rawDB(b, filepath.Join(dir, "plain.db"),
		`CREATE TABLE events (seq INTEGER PRIMARY KEY, dossier TEXT NOT NULL, type TEXT NOT NULL, unit TEXT NOT NULL,
		   day INTEGER NOT NULL, channel TEXT NOT NULL, due_day INTEGER NOT NULL);
		 CREATE INDEX events_day ON events (day)`)
	defer plain.Close()
	// The read model is loaded as a rebuild loads it.
	chunks(b, n, func(msgs []hoso.LedgerEntry) {
		for _, batch := range splitBatches(msgs, projections.RebuildBatch) {
			if err := load.Apply(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		tx, err := plain.Begin()
		if err != nil {
			b.Fatal(err)
		}
		ins, err := tx.Prepare(`INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			e, err := m.Event()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ins.Exec(m.Seq, e.Dossier, string(e.Type), e.Unit,
				hoso.LocalDate(e.At), string(e.Channel), hoso.LocalDate(e.Due)); err != nil {
				b.Fatal(err)
			}
		}
		ins.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	})
	if err := load.Finish(ctx); err != nil {
		b.Fatal(err)
	}
	db, err := projections.Open(filepath.Join(dir, "readmodel.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var wards []string
	for _, w := range u.Descendants("004", hoso.LevelWard, vn(2020, 5, 31, 12, 0)) {
		wards = append(wards, w.Code)
	}
	wardList, _ := json.Marshal(wards)
	from, to := hoso.LocalDate(vn(2020, 1, 1, 12, 0)), hoso.LocalDate(vn(2020, 5, 31, 12, 0))
	q := projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2020-01-01", To: "2020-05-31"}

	measure := func(b *testing.B, run func() error) {
		var d []time.Duration
		for b.Loop() {
			start := time.Now()
			if err := run(); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		pct := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	}
	b.Run("read-model", func(b *testing.B) {
		measure(b, func() error {
			rep, err := db.Report(ctx, u, q)
			if err == nil && rep.Total.Received == 0 {
				err = fmt.Errorf("empty report")
			}
			return err
		})
	})
	b.Run("naive-group-by", func(b *testing.B) {
		measure(b, func() error {
			rows, err := plain.QueryContext(ctx, `SELECT unit,
				sum(type = 'received' AND channel = 'online'), sum(type = 'received' AND channel = 'direct'),
				sum(type = 'received' AND channel = 'postal'), sum(type = 'resolved'), sum(type = 'withdrawn')
				FROM events WHERE day BETWEEN ? AND ? AND unit IN (SELECT value FROM json_each(?)) GROUP BY unit`,
				from, to, string(wardList))
			if err != nil {
				return err
			}
			defer rows.Close()
			seen := 0
			for rows.Next() {
				var unit string
				var a, b2, c, d, e int64
				if err := rows.Scan(&unit, &a, &b2, &c, &d, &e); err != nil {
					return err
				}
				seen++
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if seen == 0 {
				return fmt.Errorf("empty naive report")
			}
			return nil
		})
	})
}
