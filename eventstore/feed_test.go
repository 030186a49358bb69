package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
)

func openFeedStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// publish appends n messages whose data names their sequence ("m<seq>"),
// counting on the stream holding first-1 messages before.
func publish(t *testing.T, s *Store, first, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.js.PublishAsync(Subject(fmt.Sprintf("F%d", first+i)), fmt.Appendf(nil, "m%d", first+i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
}

// recorder is a follower's fn: it keeps the sequences it is given, and
// notes data that does not match its sequence.
type recorder struct {
	mu    sync.Mutex
	seqs  []uint64
	wrong []string
	// hold, when set, blocks the first call until it is closed.
	hold    chan struct{}
	holding chan struct{}
}

func (r *recorder) fn(e hoso.LedgerEntry) error {
	if r.hold != nil {
		close(r.holding)
		<-r.hold
		r.hold = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := fmt.Sprintf("m%d", e.Seq); string(e.Data) != want {
		r.wrong = append(r.wrong, fmt.Sprintf("seq %d holds %q", e.Seq, e.Data))
	}
	r.seqs = append(r.seqs, e.Seq)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

// check says whether the recorder saw exactly the sequences want, in order.
func (r *recorder) check(t *testing.T, name string, want []uint64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.wrong) > 0 {
		t.Errorf("%s: %v", name, r.wrong)
	}
	if !slices.Equal(r.seqs, want) {
		t.Errorf("%s saw %d entries, want %d: %v", name, len(r.seqs), len(want), abbreviate(r.seqs))
	}
}

func abbreviate(seqs []uint64) []uint64 {
	if len(seqs) <= 20 {
		return seqs
	}
	return append(slices.Clip(seqs[:10]), seqs[len(seqs)-10:]...)
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// follow starts a Read with follow; its error arrives on the channel.
func follow(s *Store, ctx context.Context, from uint64, r *recorder) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- s.Read(ctx, from, true, r.fn) }()
	return errc
}

func waitCount(t *testing.T, name string, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d entries, want %d", name, r.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollowersFromDifferentPositions(t *testing.T) {
	s := openFeedStore(t)
	publish(t, s, 1, 100)
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	var a, b recorder
	errA := follow(s, ctxA, 1, &a)
	errB := follow(s, ctxB, 60, &b)
	// Appends while both read what was there.
	for i := range 10 {
		publish(t, s, 101+200*i, 200)
	}
	waitCount(t, "A", &a, 2100)
	waitCount(t, "B", &b, 2100-59)

	// A leaves; B goes on.
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Errorf("A returned %v, want context.Canceled", err)
	}
	publish(t, s, 2101, 100)
	waitCount(t, "B", &b, 2200-59)
	a.check(t, "A", seqRange(1, 2100))
	b.check(t, "B", seqRange(60, 2200))
	cancelB()
	if err := <-errB; !errors.Is(err, context.Canceled) {
		t.Errorf("B returned %v, want context.Canceled", err)
	}
}

func TestSlowFollowerDoesNotHoldUpOthers(t *testing.T) {
	s := openFeedStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, s, 1, 1)
	// Another follower first, so that the feed reads before the slow one
	// joins.
	var first recorder
	errFirst := follow(s, ctx, 1, &first)
	waitFeedReading(t, s)
	slow := recorder{hold: make(chan struct{}), holding: make(chan struct{})}
	errSlow := follow(s, ctx, 1, &slow)
	<-slow.holding
	var fast recorder
	errFast := follow(s, ctx, 1, &fast)
	waitCount(t, "fast", &fast, 1)
	// More than the feed keeps for the blocked follower.
	n := followerBuffer + 3000
	for i := 0; i < n; i += 1000 {
		publish(t, s, 2+i, min(1000, n-i))
	}
	last := uint64(n + 1)
	waitCount(t, "fast", &fast, int(last))
	publish(t, s, int(last)+1, 10)
	last += 10
	waitCount(t, "fast", &fast, int(last))
	if got := slow.count(); got != 0 {
		t.Fatalf("the blocked follower recorded %d entries", got)
	}
	if !feedDropped(s) {
		t.Error("the feed dropped nothing for the blocked follower")
	}
	close(slow.hold)
	waitCount(t, "slow", &slow, int(last))
	waitCount(t, "first", &first, int(last))
	first.check(t, "first", seqRange(1, last))
	fast.check(t, "fast", seqRange(1, last))
	slow.check(t, "slow", seqRange(1, last))
	cancel()
	for _, errc := range []<-chan error{errFirst, errSlow, errFast} {
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("follower returned %v, want context.Canceled", err)
		}
	}
}

// waitFeedReading waits until the feed's consumer exists: followers that
// join from then on are never set behind by its start.
func waitFeedReading(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.feed.mu.Lock()
		reading := s.feed.consumer != ""
		s.feed.mu.Unlock()
		if reading {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the feed does not read")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// feedDropped says whether a follower is behind with a full channel: the
// feed dropped an entry for it.
func feedDropped(s *Store) bool {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	for fl := range s.feed.followers {
		if fl.behind && len(fl.entries) == followerBuffer {
			return true
		}
	}
	return false
}

// A message deleted from the stream (what an administrator could do after
// recreating it without DenyDelete) reaches a follower as a jump in Seq,
// whether it is read back or would have come from the shared read.
func TestFollowShowsDeletedMessagesAsJumps(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openFeedStore(t)
	cfg := s.streamConfig()
	cfg.DenyDelete, cfg.DenyPurge = false, false
	if err := s.js.DeleteStream(ctx, StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := s.js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	publish(t, s, 1, 10)
	for _, seq := range []uint64{4, 10} {
		if err := s.stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	var r recorder
	errc := follow(s, ctx, 1, &r)
	waitCount(t, "follower", &r, 8)
	publish(t, s, 11, 2)
	waitCount(t, "follower", &r, 10)
	r.check(t, "follower", []uint64{1, 2, 3, 5, 6, 7, 8, 9, 11, 12})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("follower returned %v", err)
	}
}

func TestFollowEndsWhenStoreCloses(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, s, 1, 1)
	var r recorder
	errc := follow(s, context.Background(), 1, &r)
	waitCount(t, "follower", &r, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, errStoreClosed) {
			t.Errorf("follower returned %v, want errStoreClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the follower did not return when the store closed")
	}
	if err := s.Read(context.Background(), 1, true, r.fn); !errors.Is(err, errStoreClosed) {
		t.Errorf("follow after Close: %v", err)
	}
	r.check(t, "follower", []uint64{1})
}
