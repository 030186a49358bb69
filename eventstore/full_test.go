package eventstore_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go/micro"
)

// A stream at its size cap refuses events with EUNAVAILABLE (503 at both
// doors) naming the cause; a refused event is not stored, a batch stores
// whole events up to the cap and refuses the rest; once the operator raises
// the cap the same events are taken.
func TestStreamFullRefusesAndResumes(t *testing.T) {
	ctx := context.Background()
	const limit = 8 << 10
	s, err := eventstore.Open(ctx, eventstore.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", SubjectBuckets: testBuckets, MaxBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	in := newIngester(t, s)

	// Fill the stream one event at a time until it refuses one.
	var refused string
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("%d events taken by a stream capped at %d bytes", i, limit)
		}
		code := fmt.Sprintf("F-%d", i)
		before := lastSeq(t, s)
		_, err := in.Append(ctx, decode(t, received(code)))
		if err == nil {
			continue
		}
		wantStorageFull(t, err)
		if got := lastSeq(t, s); got != before {
			t.Fatalf("refused event: stream went from seq %d to %d", before, got)
		}
		refused = code
		break
	}
	if !s.StorageFull() {
		t.Error("StorageFull is false after a refusal")
	}

	// A batch on the full stream: every event refused, nothing stored.
	full := lastSeq(t, s)
	var batch []*hoso.Event
	for i := range 10 {
		batch = append(batch, decode(t, received(fmt.Sprintf("G-%d", i))))
	}
	for i, r := range in.AppendBatch(ctx, batch) {
		if r.Err == nil {
			t.Fatalf("batch event %d stored on a full stream: %+v", i, r.Result)
		}
		wantStorageFull(t, r.Err)
	}
	if got := lastSeq(t, s); got != full {
		t.Fatalf("a refused batch moved the stream from seq %d to %d", full, got)
	}

	// The NATS door answers 503 with the same message.
	svc := &eventstore.IngestService{Events: in}
	if err := svc.Open(s.Conn()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	nc, _ := deskConn(t, s)
	reply, err := nc.Request(eventstore.IngestSubject, []byte(received("H-1")), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "503" {
		t.Errorf("NATS door: error code %q, want 503: %s", code, reply.Data)
	}
	if !strings.Contains(string(reply.Data), `"unavailable"`) || !strings.Contains(string(reply.Data), "storage is full") {
		t.Errorf("NATS door answer: %s", reply.Data)
	}

	// The operator raises the cap: the refused events are taken.
	st, err := s.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxBytes = 1 << 20
	if _, err := s.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if res, err := in.Append(ctx, decode(t, received(refused))); err != nil || res.Duplicate || res.Seq != full+1 {
		t.Fatalf("after the cap was raised: %+v %v, want seq %d", res, err, full+1)
	}
	if s.StorageFull() {
		t.Error("StorageFull still true after an event was stored")
	}
	for i, r := range in.AppendBatch(ctx, batch) {
		if r.Err != nil || r.Result.Duplicate {
			t.Fatalf("batch event %d after the cap was raised: %+v %v", i, r.Result, r.Err)
		}
	}

	// A batch larger than the room left stores whole events up to the cap,
	// each answered with its seq, and refuses the rest.
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxBytes = int64(info.State.Bytes) + 1500
	if _, err := s.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	before := lastSeq(t, s)
	batch = batch[:0]
	for i := range 20 {
		batch = append(batch, decode(t, received(fmt.Sprintf("J-%d", i))))
	}
	stored := 0
	for _, r := range in.AppendBatch(ctx, batch) {
		if r.Err != nil {
			wantStorageFull(t, r.Err)
			continue
		}
		stored++
		e, err := s.Msg(ctx, r.Result.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := e.Dossier(); d != r.Result.Dossier {
			t.Errorf("seq %d holds dossier %q, answered %q", r.Result.Seq, d, r.Result.Dossier)
		}
	}
	if stored == 0 || stored == len(batch) {
		t.Fatalf("%d of %d events stored with room for a few", stored, len(batch))
	}
	if got := lastSeq(t, s); got != before+uint64(stored) {
		t.Errorf("stream at seq %d, want %d + %d stored", got, before, stored)
	}
}

func wantStorageFull(t *testing.T, err error) {
	t.Helper()
	if code := hoso.ErrorCode(err); code != hoso.EUNAVAILABLE || hoso.HTTPStatus(code) != http.StatusServiceUnavailable {
		t.Fatalf("refusal %v: code %q, want %q (503)", err, code, hoso.EUNAVAILABLE)
	}
	if msg := hoso.ErrorMessage(err); !strings.Contains(msg, "storage is full") || !strings.Contains(msg, "maximum bytes") {
		t.Fatalf("refusal message %q does not name the cause", msg)
	}
}
