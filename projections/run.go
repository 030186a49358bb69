package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Run catches up from AppliedSeq()+1 and then follows the stream until ctx
// is done (it then returns ctx.Err()) or a batch fails. Each batch is what
// arrived while the previous one was being written, up to RunBatch
// messages: one event alone is applied at once, and a backlog is applied
// in large batches.
func (p *Projector) Run(ctx context.Context, store hoso.Ledger) error {
	p.ledger.Store(&ledgerRef{store})
	var lastGap uint64
	for {
		err := pump(ctx, store, p.AppliedSeq()+1, true, RunBatch, func(msgs []hoso.LedgerEntry, events []*hoso.Event) error {
			return p.apply(ctx, msgs, events)
		})
		// Rebuild never swaps in a file behind the projection, but should
		// the file's position ever jump ahead of the reader, read again
		// from the file's position (once per position: a real gap in the
		// stream is an error).
		var gap *GapError
		if errors.As(err, &gap) && gap.Want != lastGap {
			lastGap = gap.Want
			continue
		}
		return err
	}
}

// CaughtUp answers nil when the projection has applied every message the
// stream held when asked; /readyz uses it. It is an error before Run.
func (p *Projector) CaughtUp(ctx context.Context) error {
	store := p.ledger.Load()
	if store == nil {
		return errors.New("projection is not running")
	}
	last, err := store.LastSeq(ctx)
	if err != nil {
		return err
	}
	if applied := p.AppliedSeq(); applied < last {
		return fmt.Errorf("projection at seq %d, stream at seq %d", applied, last)
	}
	return nil
}

// pump reads the stream from seq from and calls apply with batches of up
// to max messages and the events they hold. Reading and decoding run in
// their own goroutine, so that the next batch is read and decoded while the
// current one is written. An event that does not decode is passed as nil
// (apply decodes it again and reports the error). Without follow it returns
// nil once the messages present at the start are applied.
func pump(ctx context.Context, store hoso.Ledger, from uint64, follow bool, max int, apply func([]hoso.LedgerEntry, []*hoso.Event) error) error {
	type decoded struct {
		m hoso.LedgerEntry
		e *hoso.Event
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan decoded, max)
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		readErr = store.Read(ctx, from, follow, func(m hoso.LedgerEntry) error {
			e, _ := m.Event()
			select {
			case ch <- decoded{m, e}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	msgs := make([]hoso.LedgerEntry, 0, max)
	events := make([]*hoso.Event, 0, max)
	add := func(d decoded) {
		msgs, events = append(msgs, d.m), append(events, d.e)
	}
	for {
		msgs, events = msgs[:0], events[:0]
		select {
		case d := <-ch:
			add(d)
		case <-done:
			// The reader stopped: apply what it left in the channel.
			for len(ch) > 0 && len(msgs) < max {
				add(<-ch)
			}
			if len(msgs) == 0 {
				return readErr
			}
		}
	fill:
		for len(msgs) < max {
			select {
			case d := <-ch:
				add(d)
			default:
				break fill
			}
		}
		if follow && len(msgs) < max {
			linger(ch, done, max, add, func() int { return len(msgs) })
		}
		if err := apply(msgs, events); err != nil {
			return err
		}
	}
}

// RunLinger is how long a live batch waits for more events once its first
// has arrived. Single events arriving one by one from many senders are then
// committed a few dozen to a transaction instead of one each, which costs
// the read model at most this much freshness.
const RunLinger = 5 * time.Millisecond

// linger adds what arrives on ch to the batch for up to RunLinger, until
// the batch holds max or the reader stops.
func linger[T any](ch <-chan T, done <-chan struct{}, max int, add func(T), size func() int) {
	timer := time.NewTimer(RunLinger)
	defer timer.Stop()
	for size() < max {
		select {
		case d := <-ch:
			add(d)
		case <-timer.C:
			return
		case <-done:
			return
		}
	}
}
