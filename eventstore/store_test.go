package eventstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// now is the tests' clock: a Monday in 2024, Vietnam working hours.
var now = time.Date(2024, 3, 4, 3, 0, 0, 0, time.UTC)

var (
	unitsOnce sync.Once
	units     *hoso.Units
	calendar  *hoso.Calendar
)

func registry(t testing.TB) (*hoso.Units, *hoso.Calendar) {
	t.Helper()
	unitsOnce.Do(func() {
		var err error
		if units, err = hoso.LoadUnits(); err != nil {
			panic(err)
		}
		if calendar, err = hoso.NewCalendar(); err != nil {
			panic(err)
		}
	})
	return units, calendar
}

// testBuckets lays the stores of the tests out in that many subject
// buckets: `make test` runs this package's tests once with one subject per
// dossier and once with HOSO_TEST_SUBJECT_BUCKETS=4, where many dossiers
// share each bucket.
var testBuckets, _ = strconv.Atoi(os.Getenv("HOSO_TEST_SUBJECT_BUCKETS"))

// openStore starts an embedded server on a free port in a temp dir.
func openStore(t testing.TB) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", SubjectBuckets: testBuckets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newIngester(t testing.TB, s *eventstore.Store) *eventstore.Ingester {
	u, c := registry(t)
	return eventstore.NewIngester(s, u, c, func() time.Time { return now })
}

func decode(t testing.TB, js string) *hoso.Event {
	t.Helper()
	e, err := hoso.DecodeEvent([]byte(js))
	if err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return e
}

func received(code string) string {
	return fmt.Sprintf(`{"type":"received","dossier":%q,"unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":5}`, code)
}

func lastSeq(t testing.TB, s *eventstore.Store) uint64 {
	t.Helper()
	seq, err := s.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestAppendLoadFold(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	in := newIngester(t, s)
	events := []string{
		received("000.00.31.H26-240301-0001"),
		`{"type":"transferred","dossier":"000.00.31.H26-240301-0001","unit":"00127","to_unit":"004","at":"2024-03-01T10:00:00+07:00"}`,
		`{"type":"resolved","dossier":"000.00.31.H26-240301-0001","unit":"004","at":"2024-03-01T15:00:00+07:00"}`,
	}
	for i, js := range events {
		res, err := in.Append(ctx, decode(t, js))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if res.Version != i+1 || res.Seq != uint64(i+1) || res.Duplicate {
			t.Fatalf("event %d: %+v", i, res)
		}
	}
	view, err := in.FindDossier(ctx, "000.00.31.H26-240301-0001")
	if err != nil {
		t.Fatal(err)
	}
	if view.State != hoso.StateResolved || view.Owner != "004" || view.ReceivingUnit != "00127" || len(view.Events) != 3 {
		t.Fatalf("dossier = %+v", view.Dossier)
	}
	// 5 working days from Friday 2024-03-01 09:00: Friday 09:00 of the next week.
	if want := time.Date(2024, 3, 8, 2, 0, 0, 0, time.UTC); !view.Due.Equal(want) {
		t.Errorf("due = %v, want %v", view.Due, want)
	}
	if view.Result != hoso.ClassEarly {
		t.Errorf("result = %s", view.Result)
	}
	for i, e := range view.Events {
		if e.Seq != uint64(i+1) || e.Version != i+1 || e.RecordedAt.IsZero() {
			t.Errorf("event %d: seq %d version %d recorded %v", i, e.Seq, e.Version, e.RecordedAt)
		}
	}
	if _, err := in.FindDossier(ctx, "nope"); hoso.ErrorCode(err) != hoso.ENOTFOUND {
		t.Errorf("unknown dossier: %v", err)
	}
}

func TestRejectedEventsChangeNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	in := newIngester(t, s)
	if _, err := in.Append(ctx, decode(t, received("A1"))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, js, code, field, says string
	}{
		{"unknown unit", `{"type":"received","dossier":"B1","unit":"99999","at":"2024-03-01T09:00:00+07:00","procedure":"p","channel":"direct","days":1}`, hoso.EINVALID, "unit", `"99999"`},
		{"unit not yet existing", `{"type":"received","dossier":"B1","unit":"00127","at":"2019-01-01T09:00:00+07:00","procedure":"p","channel":"direct","days":1}`, "", "", ""},
		{"unknown to_unit", `{"type":"transferred","dossier":"A1","unit":"00127","to_unit":"00000","at":"2024-03-01T10:00:00+07:00"}`, hoso.EINVALID, "to_unit", `"00000"`},
		{"in the future", `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-04T10:06:00+07:00"}`, hoso.EINVALID, "at", "future"},
		{"unknown dossier", `{"type":"resolved","dossier":"B2","unit":"00127","at":"2024-03-01T10:00:00+07:00"}`, hoso.ENOTFOUND, "", `"B2"`},
		{"expected_version mismatch", `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T10:00:00+07:00","expected_version":0}`, hoso.ECONFLICT, "expected_version", "has 1 events"},
		{"transition not allowed", `{"type":"returned","dossier":"A1","unit":"00127","at":"2024-03-01T10:00:00+07:00"}`, hoso.EINVALID, "type", "is processing"},
		{"received twice", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T10:00:00+07:00","procedure":"p","channel":"online","days":1}`, hoso.EINVALID, "type", "is processing"},
		{"before the previous event", `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T08:00:00+07:00"}`, hoso.EINVALID, "at", "before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := lastSeq(t, s)
			_, err := in.Append(ctx, decode(t, tt.js))
			if tt.code == "" {
				// 00127 exists since before the registry's first snapshot,
				// so 2019 is accepted; this row documents that.
				if err != nil && hoso.ErrorCode(err) != hoso.EINVALID {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var he *hoso.Error
			if hoso.ErrorCode(err) != tt.code {
				t.Errorf("code %s, want %s: %v", hoso.ErrorCode(err), tt.code, err)
			}
			if tt.field != "" && (!asHoso(err, &he) || he.Field != tt.field) {
				t.Errorf("error does not name %s: %v", tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			if after := lastSeq(t, s); after != before {
				t.Errorf("stream moved from %d to %d", before, after)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	in := newIngester(t, s)
	first, err := in.Append(ctx, decode(t, received("D1")))
	if err != nil {
		t.Fatal(err)
	}
	// The same content without an id derives the same id.
	again, err := in.Append(ctx, decode(t, received("D1")))
	if err != nil || !again.Duplicate || again.Seq != first.Seq || again.Version != 1 {
		t.Fatalf("re-send: %+v %v", again, err)
	}
	withID := `{"id":"desk-42","type":"transferred","dossier":"D1","unit":"00127","to_unit":"004","at":"2024-03-01T10:00:00+07:00"}`
	r1, err := in.Append(ctx, decode(t, withID))
	if err != nil {
		t.Fatal(err)
	}
	// A re-send after the dossier moved on is still the same answer.
	if _, err := in.Append(ctx, decode(t, `{"type":"resolved","dossier":"D1","unit":"004","at":"2024-03-01T11:00:00+07:00"}`)); err != nil {
		t.Fatal(err)
	}
	r2, err := in.Append(ctx, decode(t, withID))
	if err != nil || !r2.Duplicate || r2.Seq != r1.Seq || r2.Version != r1.Version {
		t.Fatalf("re-send with id: %+v %v (first %+v)", r2, err, r1)
	}
	// A fresh process (empty cache) answers the same from the stream.
	fresh := newIngester(t, s)
	r3, err := fresh.Append(ctx, decode(t, withID))
	if err != nil || !r3.Duplicate || r3.Seq != r1.Seq {
		t.Fatalf("re-send to a fresh ingester: %+v %v", r3, err)
	}
	before := lastSeq(t, s)
	// The same id for different content is refused, in this dossier or another.
	for _, js := range []string{
		`{"id":"desk-42","type":"transferred","dossier":"D1","unit":"00127","to_unit":"005","at":"2024-03-01T10:00:00+07:00"}`,
		`{"id":"desk-42","type":"received","dossier":"D2","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"p","channel":"direct","days":1}`,
	} {
		_, err := fresh.Append(ctx, decode(t, js))
		if hoso.ErrorCode(err) != hoso.ECONFLICT || !strings.Contains(err.Error(), "already used") {
			t.Errorf("id reuse: %v", err)
		}
	}
	if after := lastSeq(t, s); after != before {
		t.Errorf("stream moved from %d to %d", before, after)
	}
}

// Two processes (two ingesters with their own caches and connections)
// append conflicting events to one dossier at once: exactly one wins; the
// loser re-reads and is refused by the state machine, or appends after.
func TestConcurrentAppenders(t *testing.T) {
	ctx := context.Background()
	a, b := twoProcesses(t)
	for round := range 20 {
		code := fmt.Sprintf("R%d", round)
		if _, err := a.Append(ctx, decode(t, received(code))); err != nil {
			t.Fatal(err)
		}
		// Warm b's cache so that its view is stale when a wins.
		if _, err := b.FindDossier(ctx, code); err != nil {
			t.Fatal(err)
		}
		evs := []string{
			fmt.Sprintf(`{"type":"resolved","dossier":%q,"unit":"00127","at":"2024-03-01T10:00:00+07:00"}`, code),
			fmt.Sprintf(`{"type":"withdrawn","dossier":%q,"unit":"00127","at":"2024-03-01T10:00:00+07:00"}`, code),
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, in := range []*eventstore.Ingester{a, b} {
			wg.Go(func() { _, errs[i] = in.Append(ctx, decode(t, evs[i])) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: errors %v and %v, want exactly one winner", round, errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !strings.Contains(err.Error(), "is resolved") && !strings.Contains(err.Error(), "is withdrawn") {
				t.Errorf("loser's error does not name the new state: %v", err)
			}
		}
		view, _ := a.FindDossier(ctx, code)
		if len(view.Events) != 2 {
			t.Fatalf("round %d: %d events", round, len(view.Events))
		}
	}
	// Both append compatible events: both land, versions contiguous.
	code := "C1"
	if _, err := a.Append(ctx, decode(t, received(code))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, in := range []*eventstore.Ingester{a, b} {
		js := fmt.Sprintf(`{"type":"extended","dossier":%q,"unit":"00127","at":"2024-03-01T10:00:00+07:00","due":"2024-03-2%dT10:00:00+07:00","reason":"r%d"}`, code, i, i)
		wg.Go(func() { _, errs[i] = in.Append(ctx, decode(t, js)) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("compatible appends: %v, %v", errs[0], errs[1])
	}
	view, _ := b.FindDossier(ctx, code)
	for i, e := range view.Events {
		if e.Version != i+1 {
			t.Errorf("event %d has version %d", i, e.Version)
		}
	}
}

// twoProcesses returns the ingesters of two processes on one stream: each
// with its own store, connection, cache and (bucket layout) dossier index.
func twoProcesses(t *testing.T) (a, b *eventstore.Ingester) {
	t.Helper()
	s := openStore(t)
	other, err := eventstore.Open(context.Background(), eventstore.Config{URL: s.ClientURL(), Credentials: s.LedgerCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return newIngester(t, s), newIngester(t, other)
}

func TestStreamDeniesDeleteAndPurge(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	in := newIngester(t, s)
	if _, err := in.Append(ctx, decode(t, received("P1"))); err != nil {
		t.Fatal(err)
	}
	st, err := s.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 1); err == nil {
		t.Error("delete allowed")
	}
	if err := st.Purge(ctx); err == nil {
		t.Error("purge allowed")
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(eventstore.Subject("P1"))); err == nil {
		t.Error("subject purge allowed")
	}
	if seq := lastSeq(t, s); seq != 1 {
		t.Errorf("last seq %d", seq)
	}
	info, _ := st.Info(ctx)
	if info.State.Msgs != 1 || !info.Config.DenyDelete || !info.Config.DenyPurge {
		t.Errorf("stream state %+v config deny delete %v purge %v", info.State, info.Config.DenyDelete, info.Config.DenyPurge)
	}
}

func TestAppendBatchKeepsOrderPerDossier(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	in := newIngester(t, s)
	var evs []*hoso.Event
	for i := range 50 {
		code := fmt.Sprintf("B%d", i)
		evs = append(evs, decode(t, received(code)))
	}
	for i := range 50 {
		code := fmt.Sprintf("B%d", i)
		evs = append(evs, decode(t, fmt.Sprintf(`{"type":"resolved","dossier":%q,"unit":"00127","at":"2024-03-02T09:00:00+07:00"}`, code)))
	}
	evs = append(evs, decode(t, `{"type":"returned","dossier":"B0","unit":"00127","at":"2024-03-01T09:30:00+07:00"}`))
	res := in.AppendBatch(ctx, evs)
	for i := range 100 {
		if res[i].Err != nil {
			t.Fatalf("event %d: %v", i, res[i].Err)
		}
		if want := 1 + i/50; res[i].Result.Version != want {
			t.Errorf("event %d: version %d, want %d", i, res[i].Result.Version, want)
		}
	}
	if res[100].Err == nil || !strings.Contains(res[100].Err.Error(), "before") {
		t.Errorf("out-of-order event in a batch: %v", res[100].Err)
	}
	if seq := lastSeq(t, s); seq != 100 {
		t.Errorf("last seq %d", seq)
	}
}

func TestReadFromSeq(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	in := newIngester(t, s)
	for i := range 10 {
		if _, err := in.Append(ctx, decode(t, received(fmt.Sprintf("S%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	err := s.Read(ctx, 4, false, func(m hoso.LedgerEntry) error {
		e, err := m.Event()
		if err != nil {
			return err
		}
		if e.Dossier != fmt.Sprintf("S%d", m.Seq-1) {
			t.Errorf("seq %d is %s", m.Seq, e.Dossier)
		}
		seqs = append(seqs, m.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 7 || seqs[0] != 4 || seqs[6] != 10 {
		t.Errorf("read %v", seqs)
	}
}

func asHoso(err error, target **hoso.Error) bool {
	return err != nil && func() bool {
		e, ok := err.(*hoso.Error)
		if ok {
			*target = e
		}
		return ok
	}()
}

// TestBatchAgainstAnotherWriter: a batch validated against a stale view of
// its dossiers (another process appended since) retries those dossiers, and
// a received event for a dossier this process never saw is checked against
// the stream all the same.
func TestBatchAgainstAnotherWriter(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	other, err := eventstore.Open(ctx, eventstore.Config{URL: s.ClientURL(), Credentials: s.LedgerCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	a, b := newIngester(t, s), newIngester(t, other)
	for _, code := range []string{"W1", "W2"} {
		if _, err := a.Append(ctx, decode(t, received(code))); err != nil {
			t.Fatal(err)
		}
	}
	// b wins both dossiers behind a's back.
	for _, js := range []string{
		`{"type":"extended","dossier":"W1","unit":"00127","at":"2024-03-01T10:00:00+07:00","due":"2024-03-20T10:00:00+07:00","reason":"b"}`,
		`{"type":"resolved","dossier":"W2","unit":"00127","at":"2024-03-01T10:00:00+07:00"}`,
	} {
		if _, err := b.Append(ctx, decode(t, js)); err != nil {
			t.Fatal(err)
		}
	}
	before := lastSeq(t, s)
	res := a.AppendBatch(ctx, []*hoso.Event{
		decode(t, `{"type":"extended","dossier":"W1","unit":"00127","at":"2024-03-01T11:00:00+07:00","due":"2024-03-21T10:00:00+07:00","reason":"a"}`),
		decode(t, `{"type":"withdrawn","dossier":"W2","unit":"00127","at":"2024-03-01T11:00:00+07:00"}`),
		decode(t, received("W3")),
		decode(t, received("W3")),
	})
	if res[0].Err != nil || res[0].Result.Version != 3 {
		t.Errorf("compatible event after the other writer's: %+v", res[0])
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "resolved") {
		t.Errorf("event the other writer's made invalid: %+v, want an error naming the state resolved", res[1])
	}
	if res[2].Err != nil || res[3].Err != nil || !res[3].Result.Duplicate || res[3].Result.Seq != res[2].Result.Seq {
		t.Errorf("same event twice in a batch: %+v, %+v", res[2], res[3])
	}
	if got := lastSeq(t, s); got != before+2 {
		t.Errorf("stream moved from %d to %d, want 2 events", before, got)
	}

	// A process that never saw W2 and W1: a new received for W2 is refused
	// by the stream's state, a re-sent original of W1 is a duplicate.
	c := newIngester(t, other)
	before = lastSeq(t, s)
	res = c.AppendBatch(ctx, []*hoso.Event{
		decode(t, strings.Replace(received("W2"), `"days":5`, `"days":6`, 1)),
		decode(t, received("W1")),
	})
	if res[0].Err == nil || hoso.ErrorCode(res[0].Err) != hoso.EINVALID {
		t.Errorf("received for an existing dossier: %+v", res[0])
	}
	if res[1].Err != nil || !res[1].Result.Duplicate || res[1].Result.Version != 1 {
		t.Errorf("re-sent received: %+v", res[1])
	}
	if got := lastSeq(t, s); got != before {
		t.Errorf("stream moved from %d to %d, want nothing", before, got)
	}
}

// AppendBulk publishes without Msg-Id, so JetStream's duplicate window
// holds none of a bulk load's ids; a re-send is still answered as a
// duplicate from the dossier's history, by a process that has it cached, by
// a new one, and by one whose view is stale (the case of a lost
// acknowledgement: the event is stored, the sender does not know it).
func TestBulkIdempotentWithoutMsgID(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	history := func() []*hoso.Event {
		return []*hoso.Event{
			decode(t, received("B1")),
			decode(t, received("B2")),
			decode(t, `{"type":"transferred","dossier":"B1","unit":"00127","at":"2024-03-01T10:00:00+07:00","to_unit":"004"}`),
			decode(t, `{"id":"b2-resolved","type":"resolved","dossier":"B2","unit":"00127","at":"2024-03-01T11:00:00+07:00"}`),
		}
	}
	// stale sees the two dossiers opened; the rest of the history lands
	// behind its back, so it believes B1 and B2 have one event each.
	stale := newIngester(t, s)
	if r := stale.AppendBulk(ctx, history()[:2]); r[0].Err != nil || r[1].Err != nil {
		t.Fatalf("opening the dossiers: %+v", r)
	}
	a := newIngester(t, s)
	first := a.AppendBulk(ctx, history())
	for i, r := range first {
		if r.Err != nil || r.Result.Duplicate != (i < 2) {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
	loaded := lastSeq(t, s)
	if loaded != 4 {
		t.Fatalf("stream at %d after the load, want 4", loaded)
	}
	stream, err := s.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= loaded; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if id := raw.Header.Get(jetstream.MsgIDHeader); id != "" {
			t.Errorf("seq %d carries Msg-Id %q", seq, id)
		}
		if raw.Header.Get(jetstream.ExpectedLastSubjSeqHeader) == "" {
			t.Errorf("seq %d was published without its expected last subject sequence", seq)
		}
	}

	for name, in := range map[string]*eventstore.Ingester{"cached": a, "new": newIngester(t, s), "stale": stale} {
		again := in.AppendBulk(ctx, history())
		for i, r := range again {
			if r.Err != nil || !r.Result.Duplicate || r.Result.Seq != first[i].Result.Seq || r.Result.Version != first[i].Result.Version {
				t.Errorf("%s process, re-sent event %d: %+v, want the duplicate of %+v", name, i, r, first[i].Result)
			}
		}
	}
	if got := lastSeq(t, s); got != loaded {
		t.Errorf("stream moved from %d to %d on re-sends", loaded, got)
	}

	// The same id with other content is still refused, not appended.
	other := decode(t, `{"id":"b2-resolved","type":"withdrawn","dossier":"B2","unit":"00127","at":"2024-03-01T12:00:00+07:00"}`)
	if r := newIngester(t, s).AppendBulk(ctx, []*hoso.Event{other}); r[0].Err == nil || hoso.ErrorCode(r[0].Err) != hoso.ECONFLICT {
		t.Errorf("reused id with other content: %+v, want a conflict", r[0])
	}
	if got := lastSeq(t, s); got != loaded {
		t.Errorf("stream moved from %d to %d on a reused id", loaded, got)
	}
}
