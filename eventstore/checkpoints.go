package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// CheckpointStreamName is the stream of signed checkpoints of the ledger's
// Merkle tree; CheckpointSubject is its one subject.
const (
	CheckpointStreamName = "HOSO_CHECKPOINTS"
	CheckpointSubject    = "hoso.checkpoints"
)

var (
	_ hoso.CheckpointLog = (*Store)(nil)
	_ hoso.DossierReader = (*Store)(nil)
)

func (s *Store) checkpointStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              CheckpointStreamName,
		Description:       "hoso ledger: signed checkpoints of the events' Merkle tree",
		Subjects:          []string{CheckpointSubject},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Replicas:          s.cfg.Replicas,
		Duplicates:        s.cfg.DuplicateWindow,
		MaxMsgsPerSubject: -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        16 << 10,
		Discard:           jetstream.DiscardNew,
		DenyDelete:        true,
		DenyPurge:         true,
		AllowDirect:       s.directGets(),
	}
}

// AppendCheckpoint stores a signed checkpoint note. Its Msg-Id is the tree
// size, so a retried append of the same checkpoint is stored once.
func (s *Store) AppendCheckpoint(ctx context.Context, size uint64, note []byte) error {
	if s.checkpoints == nil {
		return fmt.Errorf("stream %s is not open", CheckpointStreamName)
	}
	msg := &nats.Msg{Subject: CheckpointSubject, Data: note, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "tree-"+strconv.FormatUint(size, 10))
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("append checkpoint of size %d: %w", size, err)
	}
	return nil
}

// ReadCheckpoints calls fn for every stored checkpoint, oldest first.
func (s *Store) ReadCheckpoints(ctx context.Context, fn func(hoso.CheckpointEntry) error) error {
	if s.checkpoints == nil {
		return nil
	}
	return readStream(ctx, s.checkpoints, 1, 0, 256, func(e hoso.LedgerEntry) error {
		return fn(hoso.CheckpointEntry{Seq: e.Seq, Note: e.Data})
	})
}

// ReadDossier returns a dossier's entries, exact stored bytes with their
// sequences, in stream order; none if the dossier does not exist.
func (s *Store) ReadDossier(ctx context.Context, code string) ([]hoso.LedgerEntry, error) {
	if s.buckets > 0 {
		return s.bucketEntries(ctx, code)
	}
	subj := Subject(code)
	var entries []hoso.LedgerEntry
	for seq := uint64(1); ; {
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read dossier %q from seq %d: %w", code, seq, err)
		}
		entries = append(entries, hoso.LedgerEntry{Seq: m.Sequence, Time: m.Time, Data: m.Data})
		seq = m.Sequence + 1
	}
}
