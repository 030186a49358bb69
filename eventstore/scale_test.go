package eventstore_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkSubjectMemory measures what one more dossier (one more subject
// of the ledger stream, with one message) costs in the memory of the
// embedded JetStream server, which runs in this process: the Go heap in use
// after a GC, before and after, divided by the subjects added. docs/scaling.md
// quotes it, per million dossiers:
//
//	go test -run '^$' -bench SubjectMemory -benchtime 1000000x ./eventstore
//
// "no-id" publishes without a Msg-Id; "msg-id" with the Msg-Id and the
// expected-last-subject-sequence header, as the ingester does, so that the
// deduplication window holds every id (the whole run is inside it).
func BenchmarkSubjectMemory(b *testing.B) {
	for _, withID := range []bool{false, true} {
		name := "no-id"
		if withID {
			name = "msg-id"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st, err := eventstore.Open(ctx, eventstore.Config{DataDir: b.TempDir(), DuplicateWindow: 2 * time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			js := st.JetStream()
			data := []byte(`{"id":"x","type":"received","dossier":"S1.00127-240304-000001","unit":"00127","at":"2024-03-04T02:00:00Z","procedure":"1.001776","channel":"online","due":"2024-03-07T02:00:00Z","days":3,"version":1,"recorded_at":"2024-03-04T02:00:01Z"}`)
			before := heapInUse()
			b.ResetTimer()
			for i := range b.N {
				code := fmt.Sprintf("S1.00127-240304-%07d", i)
				msg := &nats.Msg{Subject: eventstore.SubjectPrefix + eventstore.SubjectToken(code), Data: data, Header: nats.Header{}}
				if withID {
					msg.Header.Set(jetstream.MsgIDHeader, code+".1")
					msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
				}
				if _, err := js.PublishMsgAsync(msg); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(10 * time.Minute):
				b.Fatal("publishes not acknowledged")
			}
			b.StopTimer()
			if last, err := st.LastSeq(ctx); err != nil || last != uint64(b.N) {
				b.Fatalf("stream at %d (%v), want %d", last, err, b.N)
			}
			grown := float64(heapInUse()) - float64(before)
			b.ReportMetric(grown/float64(b.N), "heap-B/dossier")
			b.ReportMetric(grown/float64(b.N)*1e6/(1<<20), "heap-MiB/million")
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
