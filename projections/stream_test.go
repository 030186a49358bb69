package projections_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/projections"
	"pgregory.net/rapid"
)

// clock is the ingester's clock: after every test event.
var clock = func() time.Time { return time.Date(2021, 1, 4, 2, 0, 0, 0, time.UTC) }

func openStore(t *testing.T) (*eventstore.Store, *eventstore.Ingester) {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, c := registry(t)
	return s, eventstore.NewIngester(s, u, c, clock)
}

func appendAll(t *testing.T, in *eventstore.Ingester, events []*hoso.Event) {
	t.Helper()
	for i, r := range in.AppendBatch(context.Background(), events) {
		if r.Err != nil {
			t.Fatalf("append event %d (%s %s): %v", i, events[i].Dossier, events[i].Type, r.Err)
		}
	}
}

// history draws a history whose dossier codes start with prefix.
func history(seed int, prefix string) []*hoso.Event {
	events := rapid.Custom(func(t *rapid.T) []*hoso.Event { return genHistory(t) }).Example(seed)
	for _, e := range events {
		e.Dossier = prefix + e.Dossier
		e.ID = prefix + e.ID
	}
	return events
}

func waitCaughtUp(t *testing.T, p *projections.Projector, runErr <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := p.CaughtUp(context.Background())
		if err == nil {
			return
		}
		select {
		case err := <-runErr:
			t.Fatalf("projector stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("projection did not catch up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func reportJSON(t *testing.T, db *projections.DB, q projections.ReportQuery) []byte {
	t.Helper()
	u, _ := registry(t)
	rep, err := db.Report(context.Background(), u, q)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ledger reads back every event of the stream, in ledger order.
func ledger(t *testing.T, store *eventstore.Store) []*hoso.Event {
	t.Helper()
	var out []*hoso.Event
	err := store.Read(context.Background(), 1, false, func(m hoso.LedgerEntry) error {
		e, err := m.Event()
		out = append(out, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var streamQueries = []projections.ReportQuery{
	{Unit: "01", Level: hoso.LevelWard, From: "2020-01-01", To: "2020-12-31"},
	{Unit: "01", Level: hoso.LevelDistrict, From: "2020-02-10", To: "2020-04-20"},
	{Unit: "004", Level: hoso.LevelWard, From: "2020-03-01", To: "2020-03-31"},
	{Unit: "01", From: "2020-01-01", To: "2020-06-30", By: projections.ByProcedure},
	{Level: hoso.LevelProvince, From: "2019-12-01", To: "2021-01-03"},
}

// TestRunAndRebuild follows a real stream live, rebuilds the read model
// while it serves, and checks the reports against the events and the
// rebuilt file against the live one, byte for byte.
func TestRunAndRebuild(t *testing.T) {
	u, _ := registry(t)
	store, in := openStore(t)
	db, path := openDB(t)
	p := projections.NewProjector(db, u)
	if err := p.CaughtUp(context.Background()); err == nil {
		t.Fatal("caught up before running")
	}

	first := history(1, "A")
	appendAll(t, in, first) // before the projector starts: catch-up
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx, store) }()
	waitCaughtUp(t, p, runErr)

	second := history(2, "B")
	appendAll(t, in, second) // while it runs: live
	waitCaughtUp(t, p, runErr)
	events := ledger(t, store)
	for _, q := range streamQueries {
		checkReport(t, db, events, q)
	}
	live := map[int][]byte{}
	for i, q := range streamQueries {
		live[i] = reportJSON(t, db, q)
	}

	// A rebuild into another file gives the same reports, byte for byte.
	other := filepath.Join(t.TempDir(), "other.db")
	var calls int
	if err := projections.Rebuild(context.Background(), store, u, other, func(done, total uint64, rate float64) {
		calls++
		if done > total || rate < 0 {
			t.Errorf("progress %d/%d at %f/s", done, total, rate)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("no progress reported")
	}
	rebuilt, err := projections.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	for i, q := range streamQueries {
		if got := reportJSON(t, rebuilt, q); !bytes.Equal(got, live[i]) {
			t.Fatalf("rebuilt report %+v:\n%s\nlive:\n%s", q, got, live[i])
		}
	}

	// A rebuild of the file being served swaps it in under the running
	// projector, which goes on from the new file's position; events keep
	// arriving during the rebuild.
	if err := db.Rebuild(context.Background(), store, u, nil); err != nil {
		t.Fatal(err)
	}
	for i, q := range streamQueries {
		if got := reportJSON(t, db, q); !bytes.Equal(got, live[i]) {
			t.Fatalf("swapped report %+v:\n%s\nlive:\n%s", q, got, live[i])
		}
	}
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for _, e := range history(3, "C") {
			if _, err := in.Append(context.Background(), e); err != nil {
				t.Errorf("append: %v", err)
				return
			}
		}
	}()
	for range 3 {
		if err := db.Rebuild(context.Background(), store, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	<-appended
	waitCaughtUp(t, p, runErr)
	events = ledger(t, store)
	for _, q := range streamQueries {
		checkReport(t, db, events, q)
	}
	checkDossiers(t, db, events)

	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if need, err := projections.NeedsRebuild(path); err != nil || need {
		t.Fatalf("NeedsRebuild = %v, %v", need, err)
	}
}

// TestNeedsRebuild: a file built with another projection version needs a
// rebuild, and a rebuild (with nothing holding the file open) fixes it.
func TestNeedsRebuild(t *testing.T) {
	u, _ := registry(t)
	store, in := openStore(t)
	path := filepath.Join(t.TempDir(), "read.db")
	if need, err := projections.NeedsRebuild(path); err != nil || need {
		t.Fatalf("missing file: NeedsRebuild = %v, %v", need, err)
	}
	events := history(4, "N")
	appendAll(t, in, events)
	db, err := projections.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p := projections.NewProjector(db, u)
	if err := p.Apply(context.Background(), toStored(t, ledger(t, store))); err != nil {
		t.Fatal(err)
	}
	want := reportJSON(t, db, streamQueries[0])
	db.Close()

	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE meta SET value = '0' WHERE key = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if need, err := projections.NeedsRebuild(path); err != nil || !need {
		t.Fatalf("old version: NeedsRebuild = %v, %v", need, err)
	}
	if err := projections.Rebuild(context.Background(), store, u, path, nil); err != nil {
		t.Fatal(err)
	}
	if need, err := projections.NeedsRebuild(path); err != nil || need {
		t.Fatalf("after rebuild: NeedsRebuild = %v, %v", need, err)
	}
	db, err = projections.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(context.Background()); err != nil || v != projections.SchemaVersion {
		t.Fatalf("schema version %d, %v", v, err)
	}
	if got := reportJSON(t, db, streamQueries[0]); !bytes.Equal(got, want) {
		t.Fatalf("rebuilt:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(path + projections.RebuildSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the rebuild file is left behind: %v", err)
	}
}

// toStored turns ledger events back into stream messages.
func toStored(t *testing.T, events []*hoso.Event) []hoso.LedgerEntry {
	t.Helper()
	msgs := make([]hoso.LedgerEntry, len(events))
	for i, e := range events {
		data, err := e.MarshalStored()
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = hoso.LedgerEntry{Seq: e.Seq, Time: e.RecordedAt, Data: data}
	}
	return msgs
}
