package eventstore

import (
	"context"
	"fmt"
	"iter"
	"strconv"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// restoreInFlight bounds the restored events published before their
// acknowledgements are awaited.
const restoreInFlight = 2000

// RestoreEvents appends entries, read in order from a backup, to the
// ledger's stream, which must be empty: each at the sequence it had (the
// publish expects the stream's last sequence to be the one before, so a
// gap or a concurrent writer stops the restore), on the subject of its
// dossier in this stream's layout, without a Msg-Id. It returns how many
// were appended.
func (s *Store) RestoreEvents(ctx context.Context, entries iter.Seq2[hoso.LedgerEntry, error]) (uint64, error) {
	last, err := s.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	if last != 0 {
		return 0, fmt.Errorf("stream %s already holds %d events: restore only into an empty ledger", StreamName, last)
	}
	type pending struct {
		seq uint64
		fut jetstream.PubAckFuture
	}
	var queue []pending
	var n uint64
	wait := func(p pending) error {
		select {
		case ack := <-p.fut.Ok():
			if ack.Sequence != p.seq {
				return fmt.Errorf("restore: event of seq %d stored at seq %d", p.seq, ack.Sequence)
			}
			n++
			return nil
		case err := <-p.fut.Err():
			return fmt.Errorf("restore: event of seq %d: %w", p.seq, s.publishError("", err))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	drain := func() error {
		for _, p := range queue {
			if err := wait(p); err != nil {
				return err
			}
		}
		queue = queue[:0]
		return nil
	}
	for e, err := range entries {
		if err != nil {
			return n, err
		}
		code, err := e.Dossier()
		if err != nil {
			return n, fmt.Errorf("restore: seq %d: %w", e.Seq, err)
		}
		msg := &nats.Msg{Subject: s.SubjectOf(code), Data: e.Data, Header: nats.Header{
			jetstream.ExpectedLastSeqHeader: []string{strconv.FormatUint(e.Seq-1, 10)},
		}}
		fut, err := s.js.PublishMsgAsync(msg)
		if err != nil {
			return n, fmt.Errorf("restore: event of seq %d: %w", e.Seq, err)
		}
		queue = append(queue, pending{e.Seq, fut})
		if len(queue) >= restoreInFlight {
			if err := drain(); err != nil {
				return n, err
			}
		}
	}
	return n, drain()
}

// CheckpointCount returns how many checkpoints the ledger's checkpoint
// stream holds.
func (s *Store) CheckpointCount(ctx context.Context) (uint64, error) {
	if s.checkpoints == nil {
		return 0, nil
	}
	info, err := s.checkpoints.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", CheckpointStreamName, err)
	}
	return info.State.Msgs, nil
}
