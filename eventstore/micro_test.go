package eventstore_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
)

// More concurrent requests than workers: every one is answered, each
// event appended once; after Close none is taken.
func TestIngestServiceConcurrent(t *testing.T) {
	s := openStore(t)
	svc := &eventstore.IngestService{Events: newIngester(t, s), MaxConcurrency: 4}
	if err := svc.Open(s.Conn()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	nc, err := nats.Connect(s.ClientURL(), s.LedgerAuth())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	const senders, each = 32, 10
	seqs := make(chan uint64, senders*each)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				reply, err := nc.Request(eventstore.IngestSubject, []byte(received(fmt.Sprintf("C-%d-%d", g, i))), 10*time.Second)
				var res hoso.AppendResult
				if err != nil || json.Unmarshal(reply.Data, &res) != nil || res.Seq == 0 || res.Duplicate {
					t.Errorf("sender %d, event %d: %v %v", g, i, reply, err)
					return
				}
				seqs <- res.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for seq := range seqs {
		if seen[seq] {
			t.Errorf("seq %d answered twice", seq)
		}
		seen[seq] = true
	}
	if len(seen) != senders*each || lastSeq(t, s) != senders*each {
		t.Fatalf("%d answers, stream at seq %d; want %d", len(seen), lastSeq(t, s), senders*each)
	}

	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Request(eventstore.IngestSubject, []byte(received("C-after")), time.Second); err == nil {
		t.Error("a request was answered after Close")
	}
	if got := lastSeq(t, s); got != senders*each {
		t.Errorf("stream at seq %d after Close, want %d", got, senders*each)
	}
}
