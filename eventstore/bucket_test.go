package eventstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

func openBucketed(t *testing.T, dir string, buckets int) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: dir, Listen: "127.0.0.1:0", SubjectBuckets: buckets})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A stream keeps the layout it was created with: opening it without a
// layout takes the stream's, and asking for another is refused.
func TestSubjectLayoutIsTheStreams(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openBucketed(t, dir, 4)
	in := newIngester(t, s)
	for i := range 12 {
		if _, err := in.Append(ctx, decode(t, received(fmt.Sprintf("L%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	info, err := s.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(ctx, jetstream.WithSubjectFilter(eventstore.SubjectPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	for subj := range st.State.Subjects {
		if !strings.HasPrefix(subj, eventstore.BucketPrefix) {
			t.Errorf("subject %s is not a bucket's", subj)
		}
	}
	if n := len(st.State.Subjects); n == 0 || n > 4 {
		t.Errorf("12 dossiers in %d subjects, want 1 to 4", n)
	}
	s.Close()

	s = openBucketed(t, dir, 0)
	if s.Buckets() != 4 {
		t.Errorf("reopened without a layout: %d buckets, want the stream's 4", s.Buckets())
	}
	s.Close()
	if _, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, Listen: "127.0.0.1:0", SubjectBuckets: 8}); err == nil ||
		!strings.Contains(err.Error(), "subject buckets") || !strings.Contains(err.Error(), "4 subject buckets") {
		t.Errorf("reopened with 8 buckets: %v, want the layout refused", err)
	}
	perDossier := t.TempDir()
	s = openBucketed(t, perDossier, 0)
	s.Close()
	if _, err := eventstore.Open(ctx, eventstore.Config{DataDir: perDossier, Listen: "127.0.0.1:0", SubjectBuckets: 4}); err == nil ||
		!strings.Contains(err.Error(), "one subject per dossier") {
		t.Errorf("per-dossier stream opened with 4 buckets: %v, want the layout refused", err)
	}
}

// After a restart the dossier index is rebuilt from the stream: a dossier
// received before it is not received again, a re-sent event is a
// duplicate, and later events follow on from the stored versions.
func TestBucketIndexAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openBucketed(t, dir, 2)
	in := newIngester(t, s)
	var batch []*hoso.Event
	for i := range 40 {
		batch = append(batch, decode(t, received(fmt.Sprintf("B%d", i))))
	}
	for i := range 40 {
		batch = append(batch, decode(t, fmt.Sprintf(`{"type":"transferred","dossier":"B%d","unit":"00127","to_unit":"004","at":"2024-03-01T10:00:00+07:00"}`, i)))
	}
	for i, r := range in.AppendBatch(ctx, batch) {
		if r.Err != nil || r.Result.Version != 1+i/40 {
			t.Fatalf("event %d: %+v %v", i, r.Result, r.Err)
		}
	}
	s.Close()

	s = openBucketed(t, dir, 0)
	defer s.Close()
	before := lastSeq(t, s)
	fresh := newIngester(t, s)
	if r, err := fresh.Append(ctx, decode(t, received("B7"))); err != nil || !r.Duplicate || r.Version != 1 {
		t.Errorf("re-sent received: %+v %v, want the original as a duplicate", r, err)
	}
	other := decode(t, `{"id":"other","type":"received","dossier":"B8","unit":"00127","at":"2024-03-01T10:30:00+07:00","procedure":"p","channel":"online","days":2}`)
	if _, err := fresh.Append(ctx, other); err == nil || !strings.Contains(err.Error(), `"B8" is processing`) {
		t.Errorf("a second received for B8: %v, want it refused naming the state", err)
	}
	if after := lastSeq(t, s); after != before {
		t.Fatalf("stream moved from %d to %d", before, after)
	}
	r, err := fresh.Append(ctx, decode(t, `{"type":"resolved","dossier":"B9","unit":"004","at":"2024-03-01T11:00:00+07:00"}`))
	if err != nil || r.Version != 3 {
		t.Fatalf("resolved B9: %+v %v, want version 3", r, err)
	}
	if r, err := fresh.Append(ctx, decode(t, received("B40"))); err != nil || r.Version != 1 || r.Duplicate {
		t.Errorf("new dossier B40: %+v %v", r, err)
	}
	view, err := fresh.FindDossier(ctx, "B9")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range view.Events {
		if e.Version != i+1 || e.Dossier != "B9" {
			t.Errorf("B9 event %d: version %d, dossier %s", i, e.Version, e.Dossier)
		}
	}
	if len(view.Events) != 3 {
		t.Errorf("B9 has %d events, want 3", len(view.Events))
	}
}

// One process appends to a dossier another process holds in its cache:
// the holder's next event follows the other's, whether or not its index
// has seen the other's yet.
func TestStaleCacheAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	a, b := twoProcesses(t)
	for i, wait := range []time.Duration{0, 300 * time.Millisecond} {
		code := fmt.Sprintf("S%d", i)
		if _, err := a.Append(ctx, decode(t, received(code))); err != nil {
			t.Fatal(err)
		}
		if r, err := b.Append(ctx, decode(t, fmt.Sprintf(`{"type":"transferred","dossier":%q,"unit":"00127","to_unit":"004","at":"2024-03-01T10:00:00+07:00"}`, code))); err != nil || r.Version != 2 {
			t.Fatalf("%s transferred by the other process: %+v %v", code, r, err)
		}
		time.Sleep(wait) // with it, a's index has most likely followed b's event
		r, err := a.Append(ctx, decode(t, fmt.Sprintf(`{"type":"resolved","dossier":%q,"unit":"004","at":"2024-03-01T11:00:00+07:00"}`, code)))
		if err != nil || r.Version != 3 {
			t.Fatalf("%s resolved from the stale process: %+v %v, want version 3", code, r, err)
		}
	}
}
