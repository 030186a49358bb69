package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats.go/jetstream"
)

// dossierIndex says where each dossier's events are in a stream laid out in
// buckets (Config.SubjectBuckets), where the server no longer keeps a
// subject per dossier: the first and last sequence of every dossier, keyed
// by the 64-bit hash of its code, and the last sequence of every bucket.
// Two codes with one hash share a span, which only widens the scan of
// their bucket that finds their events.
//
// It follows the stream through the store's feed, and the ingester adds
// its own appends as they are acknowledged. Its invariant, which appends
// rely on: every message of a bucket up to the bucket's last sequence here
// is within its dossier's span here. Spans are always widened before a
// bucket's last sequence is raised, and the ingester reads the bucket's
// last sequence before the dossier's span, then publishes expecting it:
// JetStream refuses the publish if the bucket holds anything later, which
// is exactly the case where the index may not know all of the dossier.
//
// It holds every dossier the ledger ever had, so it is laid out for
// memory: per bucket, a slice of 16-byte entries sorted by the hash's high
// 32 bits (the bucket is the hash's remainder), grown by an eighth at a
// time. That is about 18 bytes a dossier, against some 42 in a Go map,
// and it grows a bucket at a time, without a map's doubling of the whole.
type dossierIndex struct {
	buckets uint32

	mu sync.RWMutex
	// spans holds each bucket's entries, sorted by tag.
	spans [][]spanEntry
	n     int
	// applied is the last sequence of the stream applied in order: every
	// message up to it is in spans.
	applied uint64

	last []atomic.Uint64 // per bucket
}

// span is the first and last sequence of a dossier's events.
type span struct{ first, last uint64 }

// spanEntry is one dossier's span within its bucket's slice.
type spanEntry struct {
	tag uint32 // the code hash's high 32 bits
	// width is last - first, or wideSpan when that does not fit (a dossier
	// open across 4 billion events): lookup then ends the span where the
	// index stands.
	width uint32
	first uint64
}

// wideSpan marks a span whose width does not fit 32 bits.
const wideSpan = math.MaxUint32

func newDossierIndex(buckets uint32) *dossierIndex {
	return &dossierIndex{buckets: buckets, spans: make([][]spanEntry, buckets), last: make([]atomic.Uint64, buckets)}
}

// add records the event at seq of dossier code.
func (x *dossierIndex) add(code string, seq uint64) {
	h := codeHash(code)
	x.mu.Lock()
	x.widen(h, seq)
	x.mu.Unlock()
	x.raise(uint32(h%uint64(x.buckets)), seq)
}

// apply records the stream's next message in order.
func (x *dossierIndex) apply(code string, seq uint64) {
	h := codeHash(code)
	x.mu.Lock()
	x.widen(h, seq)
	x.applied = max(x.applied, seq)
	x.mu.Unlock()
	x.raise(uint32(h%uint64(x.buckets)), seq)
}

// find returns the bucket of hash h and where its entry is, or would be,
// in the bucket's slice.
func (x *dossierIndex) find(h uint64) (b uint32, tag uint32, i int, ok bool) {
	b, tag = uint32(h%uint64(x.buckets)), uint32(h>>32)
	i, ok = slices.BinarySearchFunc(x.spans[b], tag, func(e spanEntry, tag uint32) int { return cmp.Compare(e.tag, tag) })
	return b, tag, i, ok
}

func (x *dossierIndex) widen(h, seq uint64) {
	b, tag, i, ok := x.find(h)
	if !ok {
		s := x.spans[b]
		if len(s) == cap(s) {
			// An eighth more at a time: the slack stays small, and a
			// bucket holds some hundreds of entries.
			grown := make([]spanEntry, len(s), len(s)+len(s)/8+2)
			copy(grown, s)
			s = grown
		}
		x.spans[b] = slices.Insert(s, i, spanEntry{tag: tag, first: seq})
		x.n++
		return
	}
	e := &x.spans[b][i]
	if e.width == wideSpan {
		e.first = min(e.first, seq)
		return
	}
	first, last := min(e.first, seq), max(e.first+uint64(e.width), seq)
	e.first = first
	if last-first >= wideSpan {
		e.width = wideSpan
	} else {
		e.width = uint32(last - first)
	}
}

// raise makes seq the bucket's last sequence unless it has a later one.
func (x *dossierIndex) raise(b uint32, seq uint64) {
	last := &x.last[b]
	for {
		cur := last.Load()
		if cur >= seq || last.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// bucketLast returns the last sequence of the bucket of code, 0 if it has
// none.
func (x *dossierIndex) bucketLast(code string) uint64 {
	return x.last[BucketOf(code, x.buckets)].Load()
}

// lookup returns the span of code's events and the sequence up to which
// the index has applied the whole stream.
func (x *dossierIndex) lookup(code string) (sp span, ok bool, applied uint64) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	b, _, i, ok := x.find(codeHash(code))
	if !ok {
		return span{}, false, x.applied
	}
	e := x.spans[b][i]
	sp = span{e.first, e.first + uint64(e.width)}
	if e.width == wideSpan {
		// Every sequence widened in is applied (≤ x.applied, set under the
		// lock) or added by an append (≤ the bucket's last, or past
		// applied, where lookup's callers scan anyway).
		sp.last = max(sp.first, x.applied, x.last[b].Load())
	}
	return sp, true, x.applied
}

// len returns how many spans the index holds.
func (x *dossierIndex) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.n
}

// catchUp applies the stream up to its last sequence now.
func (x *dossierIndex) catchUp(ctx context.Context, stream jetstream.Stream) error {
	x.mu.RLock()
	from := x.applied + 1
	x.mu.RUnlock()
	return readStream(ctx, stream, from, 0, readBatch, x.applyEntry)
}

func (x *dossierIndex) applyEntry(e hoso.LedgerEntry) error {
	code, err := e.Dossier()
	if err != nil {
		// Left out, its bucket's last sequence stays behind the stream, so
		// every append to that bucket is refused as a conflict rather than
		// made on a view that may lack it.
		return nil
	}
	x.apply(code, e.Seq)
	return nil
}

// follow applies the stream's new messages through the store's feed until
// ctx is done.
func (x *dossierIndex) follow(ctx context.Context, s *Store) error {
	x.mu.RLock()
	from := x.applied + 1
	x.mu.RUnlock()
	err := s.feed.follow(ctx, from, x.applyEntry)
	if ctx.Err() != nil || errors.Is(err, errStoreClosed) {
		return nil
	}
	return err
}

// bucketEntries returns the entries of dossier code in a bucketed stream,
// in order: those within its span in the index, then any after what the
// index has applied (which it adds). Without an index (a read-only store)
// it scans the whole bucket.
func (s *Store) bucketEntries(ctx context.Context, code string) ([]hoso.LedgerEntry, error) {
	subj := BucketSubject(BucketOf(code, s.buckets))
	var entries []hoso.LedgerEntry
	// scan reads the bucket's messages from seq from up to seq to (0: to
	// its end), keeping code's and, with learn, adding every one to the
	// index.
	scan := func(from, to uint64, learn bool) error {
		for seq := from; ; {
			m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("load dossier %q from %s seq %d: %w", code, subj, seq, err)
			}
			if to != 0 && m.Sequence > to {
				return nil
			}
			e := hoso.LedgerEntry{Seq: m.Sequence, Time: m.Time, Data: m.Data}
			d, err := e.Dossier()
			if err != nil {
				return fmt.Errorf("load dossier %q: %w", code, err)
			}
			if learn {
				s.index.add(d, e.Seq)
			}
			if d == code {
				entries = append(entries, e)
			}
			if to != 0 && m.Sequence == to {
				return nil
			}
			seq = m.Sequence + 1
		}
	}
	if s.index == nil {
		return entries, scan(1, 0, false)
	}
	sp, ok, applied := s.index.lookup(code)
	tail := applied + 1
	if ok {
		if err := scan(sp.first, sp.last, false); err != nil {
			return nil, err
		}
		tail = max(tail, sp.last+1)
	}
	return entries, scan(tail, 0, true)
}
