package projections

import (
	"context"
	"errors"
	"fmt"

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
		err := pump(ctx, store, p.AppliedSeq()+1, true, RunBatch, func(msgs []hoso.LedgerEntry) error {
			return p.Apply(ctx, msgs)
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
// to max messages. Reading runs in its own goroutine so that the next
// batch arrives while the current one is written. Without follow it
// returns nil once the messages present at the start are applied.
func pump(ctx context.Context, store hoso.Ledger, from uint64, follow bool, max int, apply func([]hoso.LedgerEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan hoso.LedgerEntry, max)
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		readErr = store.Read(ctx, from, follow, func(m hoso.LedgerEntry) error {
			select {
			case ch <- m:
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
	batch := make([]hoso.LedgerEntry, 0, max)
	for {
		batch = batch[:0]
		select {
		case m := <-ch:
			batch = append(batch, m)
		case <-done:
			// The reader stopped: apply what it left in the channel.
			for len(ch) > 0 && len(batch) < max {
				batch = append(batch, <-ch)
			}
			if len(batch) == 0 {
				return readErr
			}
		}
	fill:
		for len(batch) < max {
			select {
			case m := <-ch:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if err := apply(batch); err != nil {
			return err
		}
	}
}
