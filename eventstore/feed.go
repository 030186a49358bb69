package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats.go/jetstream"
)

// followerBuffer is how many entries the feed keeps for a busy follower.
// Past it the follower misses entries and reads them from the stream
// itself, which costs a consumer of its own: a projector writing a large
// batch should not get there.
const followerBuffer = 8192

// errStoreClosed answers a follower of a store that closed under it.
var errStoreClosed = errors.New("event store closed")

// feed is the store's one following read of the ledger stream, shared by
// every Read with follow in the process, so that the server delivers each
// new message to the process once however many follow it.
//
// A goroutine, started by the first follower and stopped by close, reads
// the stream with an ordered consumer and hands each entry to every
// follower's buffered channel without ever waiting for one. A follower
// whose channel is full is marked behind and gets nothing more until it
// has read the stream up to its end by itself. A follower keeps its own
// position: it skips entries before it, and when an entry comes after it,
// it first reads what lies between from the stream, so a message deleted
// from the stream still shows as a jump in Seq.
type feed struct {
	stream jetstream.Stream
	log    *slog.Logger

	mu        sync.Mutex
	followers map[*follower]struct{}
	running   bool
	closed    bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	done      chan struct{} // closed by close
	// consumer names the feed's consumer on the server once it reads.
	consumer string
}

// follower is one Read with follow.
type follower struct {
	entries chan hoso.LedgerEntry
	// behind, under feed.mu, means entries may have passed the follower
	// by: it joined, its channel was full, or the feed started after it
	// joined. The feed hands it nothing while it is set; the follower
	// clears it and then reads the stream to its end.
	behind bool
	// wake tells a waiting follower that it is behind.
	wake chan struct{}
}

func newFeed(stream jetstream.Stream, log *slog.Logger) *feed {
	return &feed{stream: stream, log: log, followers: map[*follower]struct{}{}, done: make(chan struct{})}
}

// follow calls fn for every entry from seq from, in order, each once,
// until ctx is done, fn fails or the feed closes.
func (f *feed) follow(ctx context.Context, from uint64, fn func(hoso.LedgerEntry) error) error {
	fl, err := f.join()
	if err != nil {
		return err
	}
	defer f.leave(fl)
	next := max(from, 1)
	pass := func(e hoso.LedgerEntry) error {
		if e.Seq < next {
			return nil
		}
		if err := fn(e); err != nil {
			return err
		}
		next = e.Seq + 1
		return nil
	}
	take := func(e hoso.LedgerEntry) error {
		if e.Seq > next {
			// Read what lies before e from the stream; what is not there
			// any more reaches fn as a jump in Seq.
			if err := readStream(ctx, f.stream, next, e.Seq-1, readBatch, pass); err != nil {
				return err
			}
		}
		return pass(e)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case e := <-fl.entries:
			if err := take(e); err != nil {
				return err
			}
			continue
		default:
		}
		// The channel is empty: everything the feed handed over is done.
		if f.clearBehind(fl) {
			if err := readStream(ctx, f.stream, next, 0, readBatch, pass); err != nil {
				return err
			}
			continue
		}
		select {
		case e := <-fl.entries:
			if err := take(e); err != nil {
				return err
			}
		case <-fl.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
			return errStoreClosed
		}
	}
}

// join adds a follower, behind until it has read the stream to its end,
// and starts the feed's goroutine if it is not running.
func (f *feed) join() (*follower, error) {
	fl := &follower{entries: make(chan hoso.LedgerEntry, followerBuffer), behind: true, wake: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errStoreClosed
	}
	f.followers[fl] = struct{}{}
	if !f.running {
		f.running = true
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel = cancel
		f.wg.Go(func() { f.run(ctx) })
	}
	return fl, nil
}

func (f *feed) leave(fl *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.followers, fl)
}

// clearBehind reports whether fl was behind, and clears it: from now on
// the feed hands it entries again, and what it missed is in the stream
// before the read that follows.
func (f *feed) clearBehind(fl *follower) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	behind := fl.behind
	fl.behind = false
	return behind
}

// hand gives e to every follower that is not behind, without waiting.
func (f *feed) hand(e hoso.LedgerEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fl := range f.followers {
		if fl.behind {
			continue
		}
		select {
		case fl.entries <- e:
		default:
			fl.setBehind()
		}
	}
}

// setBehindAll marks every follower behind: the feed starts after them.
func (f *feed) setBehindAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fl := range f.followers {
		fl.setBehind()
	}
}

// setBehind is called with feed.mu held.
func (fl *follower) setBehind() {
	fl.behind = true
	select {
	case fl.wake <- struct{}{}:
	default:
	}
}

// close stops the feed's goroutine; followers return errStoreClosed.
func (f *feed) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.done)
	cancel := f.cancel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	f.wg.Wait()
}

// Pauses of the feed after its consumer failed: doubling from the first
// to the last.
const (
	feedRetryFirst = 100 * time.Millisecond
	feedRetryLast  = 10 * time.Second
)

// run reads the stream from its end at the first start until ctx ends; a
// consumer that fails is recreated after the message it last delivered.
func (f *feed) run(ctx context.Context) {
	var next uint64 // the next sequence to hand over; 0 before the first start
	pause := feedRetryFirst
	for {
		progressed, err := f.read(ctx, &next)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			pause = feedRetryFirst
		}
		f.mu.Lock()
		consumer := f.consumer
		f.mu.Unlock()
		f.log.Warn("ledger feed: reading the stream failed; retrying", "consumer", consumer, "from_seq", next, "retry_in", pause, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, feedRetryLast)
	}
}

// read hands over the stream's messages from *next with one ordered
// consumer until ctx ends or the consumer fails, and reports whether it
// handed any over.
func (f *feed) read(ctx context.Context, next *uint64) (bool, error) {
	if *next == 0 {
		info, err := f.stream.Info(ctx)
		if err != nil {
			return false, fmt.Errorf("stream %s: %w", StreamName, err)
		}
		*next = info.State.LastSeq + 1
		// Followers that joined before now read up to here themselves.
		f.setBehindAll()
	}
	cons, err := f.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   *next,
	})
	if err != nil {
		return false, fmt.Errorf("follow %s from seq %d: %w", StreamName, *next, err)
	}
	defer deleteConsumer(ctx, f.stream, cons)
	if info := cons.CachedInfo(); info != nil {
		f.mu.Lock()
		f.consumer = info.Name
		f.mu.Unlock()
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(readBatch))
	if err != nil {
		return false, fmt.Errorf("follow %s from seq %d: %w", StreamName, *next, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	progressed := false
	for {
		msg, err := it.Next()
		if err != nil {
			return progressed, fmt.Errorf("follow %s: %w", StreamName, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return progressed, fmt.Errorf("follow %s: %w", StreamName, err)
		}
		*next = meta.Sequence.Stream + 1
		progressed = true
		f.hand(hoso.LedgerEntry{Seq: meta.Sequence.Stream, Time: meta.Timestamp, Data: msg.Data()})
	}
}
