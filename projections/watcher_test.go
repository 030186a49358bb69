package projections_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/projections"
)

// watchNow is the watchers' and the ingesters' clock: a Friday afternoon.
var watchNow = vn(2024, 3, 8, 15, 0)

// follower is one hoso process's read model following the stream.
type follower struct {
	db  *projections.DB
	p   *projections.Projector
	err chan error
}

func follow(t *testing.T, store *eventstore.Store) *follower {
	t.Helper()
	u, _ := registry(t)
	db, _ := openDB(t)
	f := &follower{db: db, p: projections.NewProjector(db, u), err: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.err <- f.p.Run(ctx, store) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

func (f *follower) sync(t *testing.T) {
	t.Helper()
	waitCaughtUp(t, f.p, f.err)
}

func overdueEvents(t *testing.T, store *eventstore.Store, code string) []*hoso.Event {
	t.Helper()
	var out []*hoso.Event
	for _, e := range ledger(t, store) {
		if e.Dossier == code && e.Type == hoso.EventOverdue {
			out = append(out, e)
		}
	}
	return out
}

func TestWatcherOncePerDue(t *testing.T) {
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	u, c := registry(t)
	clock := func() time.Time { return watchNow }
	// Two processes: each its own ingester (own cache) and read model.
	inA, inB := eventstore.NewIngester(store, u, c, clock), eventstore.NewIngester(store, u, c, clock)
	fA, fB := follow(t, store), follow(t, store)

	dueLate := vn(2024, 3, 6, 17, 0)
	send := func(e *hoso.Event) {
		t.Helper()
		if _, err := inA.Append(context.Background(), e); err != nil {
			t.Fatalf("%s %s: %v", e.Dossier, e.Type, err)
		}
	}
	// late: past due. early: due next week. paused: past due but awaiting a
	// supplement. moved: an event came after its due had passed (it is marked
	// all the same, the marker being dated at the due).
	send(&hoso.Event{Type: hoso.EventReceived, Dossier: "late", Unit: "00127", At: vn(2024, 3, 4, 9, 0), Procedure: "1.001776", Channel: hoso.ChannelOnline, Due: dueLate})
	send(&hoso.Event{Type: hoso.EventReceived, Dossier: "early", Unit: "00127", At: vn(2024, 3, 4, 9, 0), Procedure: "1.001776", Channel: hoso.ChannelOnline, Due: vn(2024, 3, 12, 17, 0)})
	send(&hoso.Event{Type: hoso.EventReceived, Dossier: "paused", Unit: "00127", At: vn(2024, 3, 4, 9, 0), Procedure: "1.001776", Channel: hoso.ChannelOnline, Due: dueLate})
	send(&hoso.Event{Type: hoso.EventSupplementRequested, Dossier: "paused", Unit: "00127", At: vn(2024, 3, 5, 9, 0), Reason: "thiếu giấy tờ"})
	send(&hoso.Event{Type: hoso.EventReceived, Dossier: "moved", Unit: "00127", At: vn(2024, 3, 4, 9, 0), Procedure: "1.001776", Channel: hoso.ChannelOnline, Due: dueLate})
	send(&hoso.Event{Type: hoso.EventTransferred, Dossier: "moved", Unit: "00127", ToUnit: "004", At: vn(2024, 3, 7, 9, 0)})
	fA.sync(t)
	fB.sync(t)

	wA := &projections.Watcher{DB: fA.db, Events: inA, Now: clock, Batch: 1}
	wB := &projections.Watcher{DB: fB.db, Events: inB, Now: clock, Batch: 1}
	var wg sync.WaitGroup
	var nA, nB int
	var errA, errB error
	wg.Go(func() { nA, errA = wA.Pass(context.Background()) })
	wg.Go(func() { nB, errB = wB.Pass(context.Background()) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("passes: %v, %v", errA, errB)
	}
	if nA+nB != 2 {
		t.Fatalf("two watchers appended %d and %d overdue events, want 2 in all (late and moved)", nA, nB)
	}
	got := overdueEvents(t, store, "late")
	if len(got) != 1 || !got[0].At.Equal(dueLate) || got[0].ID != hoso.OverdueEventID("late", dueLate) || got[0].Unit != "00127" {
		t.Fatalf("overdue events of late: %+v", got)
	}
	if got := overdueEvents(t, store, "moved"); len(got) != 1 || !got[0].At.Equal(dueLate) || got[0].Unit != "004" {
		t.Fatalf("overdue events of moved: %+v, want one at its due, at its owner", got)
	}
	for _, code := range []string{"early", "paused"} {
		if n := len(overdueEvents(t, store, code)); n != 0 {
			t.Fatalf("%s got %d overdue events, want 0", code, n)
		}
	}

	// A restarted process (a fresh ingester) whose read model has
	// (may) not have seen it yet proposes it again: the ledger answers a duplicate.
	inC := eventstore.NewIngester(store, u, c, clock)
	n, err := (&projections.Watcher{DB: fB.db, Events: inC, Now: clock}).Pass(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("restarted watcher on a stale read model: appended %d, err %v", n, err)
	}
	fA.sync(t)
	if cands, err := fA.db.OverdueCandidates(context.Background(), watchNow, time.Time{}, "", 10); err != nil || len(cands) != 0 {
		t.Fatalf("candidates once marked: %+v, %v", cands, err)
	}
	if n := len(overdueEvents(t, store, "late")); n != 1 {
		t.Fatalf("after restart: %d overdue events, want 1", n)
	}

	// A supplement restarts the clock with a new due; once that passes too,
	// a second overdue event follows, dated at the new due.
	dueAgain := vn(2024, 3, 8, 11, 0)
	send(&hoso.Event{Type: hoso.EventSupplementRequested, Dossier: "late", Unit: "00127", At: vn(2024, 3, 7, 8, 0), Reason: "thiếu giấy tờ"})
	send(&hoso.Event{Type: hoso.EventSupplementReceived, Dossier: "late", Unit: "00127", At: vn(2024, 3, 7, 9, 0), Due: dueAgain})
	fA.sync(t)
	for range 2 {
		if _, err := wA.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		fA.sync(t)
	}
	got = overdueEvents(t, store, "late")
	if len(got) != 2 || !got[0].At.Equal(dueLate) || !got[1].At.Equal(dueAgain) {
		t.Fatalf("after a supplement: %d overdue events %+v, want one at %s and one at %s", len(got), got, dueLate, dueAgain)
	}
}

// TestWatcherOpenClose runs the loop as Main does and sees it mark a dossier.
func TestWatcherOpenClose(t *testing.T) {
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	u, c := registry(t)
	clock := func() time.Time { return watchNow }
	in := eventstore.NewIngester(store, u, c, clock)
	f := follow(t, store)
	due := vn(2024, 3, 6, 17, 0)
	if _, err := in.Append(context.Background(), &hoso.Event{Type: hoso.EventReceived, Dossier: "late", Unit: "00127",
		At: vn(2024, 3, 4, 9, 0), Procedure: "1.001776", Channel: hoso.ChannelDirect, Due: due}); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	w := &projections.Watcher{DB: f.db, Events: in, Now: clock, Interval: 10 * time.Millisecond, Ready: f.p.CaughtUp}
	if err := w.Open(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	deadline := time.Now().Add(30 * time.Second)
	for len(overdueEvents(t, store, "late")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher's loop appended no overdue event")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(overdueEvents(t, store, "late")); n != 1 {
		t.Fatalf("%d overdue events, want 1", n)
	}
}
