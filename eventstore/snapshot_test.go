package eventstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const snapshotBuckets = 8

func openSnapshotStore(t *testing.T, dir string, buckets int) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0", SubjectBuckets: buckets,
		IndexSnapshot: filepath.Join(dir, "index.snap")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// appendEvents publishes n events of 97 dossiers (first-1 already in the
// stream), each on its dossier's bucket, and waits until the index has
// applied them.
func appendEvents(t *testing.T, s *Store, first, n int) {
	t.Helper()
	for i := range n {
		code := fmt.Sprintf("D-%d", (first+i)%97)
		data := fmt.Appendf(nil, `{"dossier":%q,"seq":%d}`, code, first+i)
		if _, err := s.js.PublishAsync(BucketSubject(BucketOf(code, s.buckets)), data); err != nil {
			t.Fatal(err)
		}
	}
	<-s.js.PublishAsyncComplete()
	want := uint64(first + n - 1)
	for range 1500 {
		s.index.mu.RLock()
		applied := s.index.applied
		s.index.mu.RUnlock()
		if applied == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the index did not apply up to seq %d", want)
}

// sameIndex compares an index with one built from the whole stream.
func sameIndex(t *testing.T, s *Store) {
	t.Helper()
	full := newDossierIndex(s.buckets)
	if err := full.catchUp(context.Background(), s.stream); err != nil {
		t.Fatal(err)
	}
	x := s.index
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.applied != full.applied || x.n != full.n {
		t.Fatalf("index at seq %d with %d dossiers; the full rebuild at %d with %d", x.applied, x.n, full.applied, full.n)
	}
	for b := range s.buckets {
		if !slices.Equal(x.spans[b], full.spans[b]) || x.last[b].Load() != full.last[b].Load() {
			t.Fatalf("bucket %d: %v last %d; the full rebuild %v last %d", b, x.spans[b], x.last[b].Load(), full.spans[b], full.last[b].Load())
		}
	}
}

// A store opened on a snapshot reads only the stream's tail after it, and
// its index is the one a read of the whole stream builds.
func TestIndexSnapshotPlusTailIsFullRebuild(t *testing.T) {
	dir := t.TempDir()
	s := openSnapshotStore(t, dir, snapshotBuckets)
	if s.indexSnapshotSeq != 0 {
		t.Fatalf("a new store loaded a snapshot at %d", s.indexSnapshotSeq)
	}
	appendEvents(t, s, 1, 500)
	if err := s.writeIndexSnapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(s.cfg.IndexSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, 501, 300)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Closing wrote a snapshot of every event: nothing is read at open.
	s = openSnapshotStore(t, dir, snapshotBuckets)
	if s.indexSnapshotSeq != 800 {
		t.Fatalf("snapshot written at close loaded at seq %d, want 800", s.indexSnapshotSeq)
	}
	sameIndex(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The one taken at 500: events 501..800 are read from the stream.
	if err := os.WriteFile(s.cfg.IndexSnapshot, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openSnapshotStore(t, dir, snapshotBuckets)
	if s.indexSnapshotSeq != 500 {
		t.Fatalf("snapshot loaded at seq %d, want 500", s.indexSnapshotSeq)
	}
	sameIndex(t, s)
	appendEvents(t, s, 801, 50)
	sameIndex(t, s)
}

// A snapshot that is damaged, truncated, of another stream, of another
// layout or ahead of the stream is ignored: the index is read from the
// whole stream, and closing writes a good snapshot again.
func TestIndexSnapshotIgnoredWhenDamagedOrStale(t *testing.T) {
	dir := t.TempDir()
	s := openSnapshotStore(t, dir, snapshotBuckets)
	appendEvents(t, s, 1, 300)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(s.cfg.IndexSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot of a bucket whose last sequence lagged its spans (taken
	// while an append was being recorded) is raised to them on load.
	s = openSnapshotStore(t, dir, snapshotBuckets)
	for b := range s.buckets {
		s.index.last[b].Store(0)
	}
	if err := s.writeIndexSnapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	lagging, err := os.ReadFile(s.cfg.IndexSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Another stream of the same layout, and one ahead of this.
	other := t.TempDir()
	o := openSnapshotStore(t, other, snapshotBuckets)
	appendEvents(t, o, 1, 300)
	o.Close()
	ofOther, _ := os.ReadFile(o.cfg.IndexSnapshot)
	ahead := t.TempDir()
	o = openSnapshotStore(t, ahead, snapshotBuckets)
	appendEvents(t, o, 1, 400)
	o.Close()
	ofAhead, _ := os.ReadFile(o.cfg.IndexSnapshot)
	layout := t.TempDir()
	o = openSnapshotStore(t, layout, 4)
	appendEvents(t, o, 1, 300)
	o.Close()
	ofLayout, _ := os.ReadFile(o.cfg.IndexSnapshot)

	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for _, tt := range []struct {
		name   string
		file   []byte
		loaded uint64
	}{
		{"good", good, 300},
		{"bucket last lagging", lagging, 300},
		{"byte changed", flipped, 0},
		{"truncated", good[:len(good)-40], 0},
		{"empty", nil, 0},
		{"not a snapshot", []byte("HOSOIDX1 but nothing else of one, long enough to be read as a header"), 0},
		{"of another stream", ofOther, 0},
		{"ahead of the stream", ofAhead, 0},
		{"of another layout", ofLayout, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(s.cfg.IndexSnapshot, tt.file, 0o600); err != nil {
				t.Fatal(err)
			}
			s := openSnapshotStore(t, dir, snapshotBuckets)
			if s.indexSnapshotSeq != tt.loaded {
				t.Fatalf("loaded at seq %d, want %d", s.indexSnapshotSeq, tt.loaded)
			}
			sameIndex(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(s.cfg.IndexSnapshot); err != nil || !slices.Equal(b, good) {
				t.Fatalf("closing did not write the good snapshot again: %v", err)
			}
		})
	}
}

// A running store writes its snapshot every interval while events arrive,
// without holding up the index that follows them.
func TestIndexSnapshotWrittenWhileRunning(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0", SubjectBuckets: snapshotBuckets,
		IndexSnapshot: filepath.Join(dir, "index.snap"), IndexSnapshotInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for round := range 5 {
		appendEvents(t, s, round*100+1, 100)
	}
	for range 1500 {
		if x, err := s.loadIndexSnapshot(context.Background()); err == nil && x.applied == 500 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no snapshot of seq 500 written while running")
}
