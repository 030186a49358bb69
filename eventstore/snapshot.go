package eventstore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A dossier index snapshot (Config.IndexSnapshot) is the index as it stood
// at some sequence of the stream, so that a store opens by reading the
// stream's tail after it rather than the whole stream. It names the stream
// it was taken of (its creation time) and the hash of the message at that
// sequence, and ends with the SHA-256 of what precedes: a snapshot of
// another stream, ahead of this one, or damaged is ignored, and the index
// built from the whole stream as without one.
//
// Layout, little-endian: the magic "HOSOIDX1"; buckets (uint32); the
// stream's creation time (int64 Unix nanoseconds); applied (uint64); the
// SHA-256 of the message at applied (32 bytes, zero when applied is 0);
// then per bucket its last sequence (uint64), its entry count (uint32) and
// the entries (tag uint32, width uint32, first uint64); then the SHA-256.
const snapshotMagic = "HOSOIDX1"

// DefaultIndexSnapshotInterval is how often a store that appends writes its
// index snapshot while it runs (and once more when it closes), so that a
// restart after a crash reads at most that much of the stream's tail.
const DefaultIndexSnapshotInterval = 10 * time.Minute

// IndexSnapshotSeq is the stream sequence the dossier index was loaded at
// from its snapshot when the store opened (only the events after it were
// read), 0 when it was read from the whole stream or there is none.
func (s *Store) IndexSnapshotSeq() uint64 { return s.indexSnapshotSeq }

// snapshotIdentity is what a snapshot says about the stream it was taken
// of.
type snapshotIdentity struct {
	created int64
	applied uint64
	digest  [sha256.Size]byte
}

// streamIdentity reads the identity a snapshot of the stream at seq
// applied must carry.
func (s *Store) streamIdentity(ctx context.Context, applied uint64) (snapshotIdentity, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return snapshotIdentity{}, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	id := snapshotIdentity{created: info.Created.UnixNano(), applied: applied}
	if applied == 0 {
		return id, nil
	}
	if applied > info.State.LastSeq {
		return id, fmt.Errorf("the snapshot covers seq %d, the stream ends at %d", applied, info.State.LastSeq)
	}
	m, err := s.stream.GetMsg(ctx, applied)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return id, fmt.Errorf("the stream has no message at seq %d", applied)
		}
		return id, fmt.Errorf("get seq %d: %w", applied, err)
	}
	id.digest = snapshotDigest(m.Subject, m.Data)
	return id, nil
}

func snapshotDigest(subject string, data []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(data)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// writeIndexSnapshot writes the index to the snapshot file, atomically. It
// may run while the index follows the stream: applied is read first, and
// every bucket then holds at least what was applied up to it (entries only
// grow), copied a bucket at a time under the read lock; what is later is
// read again from the stream's tail when the snapshot is loaded.
func (s *Store) writeIndexSnapshot(ctx context.Context) error {
	path, x := s.cfg.IndexSnapshot, s.index
	x.mu.RLock()
	applied := x.applied
	x.mu.RUnlock()
	id, err := s.streamIdentity(ctx, applied)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, sum), 1<<20)
	var buf [16]byte
	le := binary.LittleEndian
	w.WriteString(snapshotMagic)
	le.PutUint32(buf[:4], x.buckets)
	w.Write(buf[:4])
	le.PutUint64(buf[:8], uint64(id.created))
	w.Write(buf[:8])
	le.PutUint64(buf[:8], id.applied)
	w.Write(buf[:8])
	w.Write(id.digest[:])
	for b := range x.buckets {
		x.mu.RLock()
		entries := x.spans[b]
		le.PutUint64(buf[:8], x.last[b].Load())
		le.PutUint32(buf[8:12], uint32(len(entries)))
		w.Write(buf[:12])
		for _, e := range entries {
			le.PutUint32(buf[0:4], e.tag)
			le.PutUint32(buf[4:8], e.width)
			le.PutUint64(buf[8:16], e.first)
			w.Write(buf[:16])
		}
		x.mu.RUnlock()
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(sum.Sum(nil)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// errSnapshot is a snapshot file that is not a whole snapshot of this
// index's layout.
var errSnapshot = errors.New("not a whole dossier index snapshot")

// loadIndexSnapshot reads the snapshot file into a new index, checking it
// against the stream. It returns nil and why when there is no usable
// snapshot.
func (s *Store) loadIndexSnapshot(ctx context.Context) (*dossierIndex, error) {
	f, err := os.Open(s.cfg.IndexSnapshot)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// The hash covers all but the last 32 bytes.
	body := st.Size() - sha256.Size
	if body < int64(len(snapshotMagic)+4+8+8+sha256.Size) {
		return nil, errSnapshot
	}
	sum := sha256.New()
	r := &snapshotReader{r: bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, body), sum), 1<<20)}
	if string(r.bytes(len(snapshotMagic))) != snapshotMagic {
		return nil, fmt.Errorf("%w: no %s header", errSnapshot, snapshotMagic)
	}
	if buckets := r.uint32(); buckets != s.buckets {
		return nil, fmt.Errorf("%w: of %d buckets, the stream has %d", errSnapshot, buckets, s.buckets)
	}
	var id snapshotIdentity
	id.created = int64(r.uint64())
	id.applied = r.uint64()
	copy(id.digest[:], r.bytes(sha256.Size))
	x := newDossierIndex(s.buckets)
	for b := range s.buckets {
		last := r.uint64()
		n := r.uint32()
		if r.err != nil || int64(n)*16 > body {
			return nil, errSnapshot
		}
		entries := make([]spanEntry, n, n+n/8+2)
		for i := range entries {
			entries[i] = spanEntry{tag: r.uint32(), width: r.uint32(), first: r.uint64()}
			if i > 0 && entries[i].tag <= entries[i-1].tag {
				return nil, fmt.Errorf("%w: bucket %d is not sorted", errSnapshot, b)
			}
			// Every sequence of a bucket's spans is at most its last; a
			// last taken while an append was being recorded may lag.
			if e := entries[i]; e.width != wideSpan {
				last = max(last, e.first+uint64(e.width))
			} else {
				last = max(last, e.first)
			}
		}
		x.spans[b], x.n = entries, x.n+int(n)
		x.last[b].Store(last)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, r.err)
	}
	var want [sha256.Size]byte
	if _, err := io.ReadFull(f, want[:]); err != nil || string(want[:]) != string(sum.Sum(nil)) {
		return nil, fmt.Errorf("%w: its checksum does not match (damaged)", errSnapshot)
	}
	have, err := s.streamIdentity(ctx, id.applied)
	if err != nil {
		return nil, fmt.Errorf("stale: %w", err)
	}
	if have.created != id.created {
		return nil, errors.New("stale: taken of another stream (its creation time differs)")
	}
	if have.digest != id.digest {
		return nil, fmt.Errorf("stale: the stream's message at seq %d is not the one it was taken at", id.applied)
	}
	x.applied = id.applied
	return x, nil
}

// snapshotReader reads fixed-size fields, keeping the first error.
type snapshotReader struct {
	r   *bufio.Reader
	err error
	buf [sha256.Size]byte
}

func (r *snapshotReader) bytes(n int) []byte {
	if r.err != nil {
		return r.buf[:n]
	}
	_, r.err = io.ReadFull(r.r, r.buf[:n])
	return r.buf[:n]
}

func (r *snapshotReader) uint32() uint32 { return binary.LittleEndian.Uint32(r.bytes(4)) }
func (r *snapshotReader) uint64() uint64 { return binary.LittleEndian.Uint64(r.bytes(8)) }

// snapshotEvery writes the index snapshot every interval while the index
// advances, until ctx is done.
func (s *Store) snapshotEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var written uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.index.mu.RLock()
		applied := s.index.applied
		s.index.mu.RUnlock()
		if applied == written {
			continue
		}
		if err := s.writeIndexSnapshot(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("dossier index snapshot not written", "file", s.cfg.IndexSnapshot, "err", err)
			}
			continue
		}
		written = applied
	}
}
