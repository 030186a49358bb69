package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/transparency"
)

// BenchmarkAppendTamperEvidence appends `received` events of new dossiers
// through the ingest service, from 64 goroutines, with the Merkle tree and
// checkpoints off and on in the same run. With them on, the timing includes
// waiting for the tree to hash every appended event.
func BenchmarkAppendTamperEvidence(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("tree=%v", on), func(b *testing.B) {
			m := NewMain()
			m.Config.DataDir = filepath.Join(b.TempDir(), "data")
			m.Config.HTTPAddr, m.Config.NATSListen, m.Config.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "error"
			m.Config.TamperEvidence = on
			m.Now = func() time.Time { return testNow }
			if err := m.Open(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var n atomic.Int64
			b.SetParallelism(32) // 64 senders on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					i := n.Add(1)
					e, err := hoso.DecodeEvent(fmt.Appendf(nil, `{"type":"received","dossier":"B%d","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`, i))
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := m.Ingester.Append(ctx, e); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if on {
				for m.Transparency.TreeSize() < uint64(n.Load()) {
					time.Sleep(time.Millisecond)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkVerify runs the verifier over a ledger of 100,000 events of
// 25,000 dossiers with a checkpoint every 1,000; the figure is events/s.
func BenchmarkVerify(b *testing.B) {
	const events, perDossier = 100_000, 4
	dir := filepath.Join(b.TempDir(), "data")
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.HTTPAddr, m.Config.NATSListen, m.Config.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "error"
	if err := m.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	js := m.Store.JetStream()
	// Stored-form events (received, then transferred three times) published
	// straight to the stream, faster than through the ingest service.
	for i := range events {
		d, v := i/perDossier, i%perDossier+1
		var data []byte
		if v == 1 {
			data = fmt.Appendf(nil, `{"id":"x-%d","type":"received","dossier":"D%06d","unit":"00127","at":"2024-03-04T02:00:00Z","procedure":"1.001776","channel":"online","due":"2024-03-07T02:00:00Z","version":1,"recorded_at":"2024-03-04T02:00:00.123456789Z"}`, i, d)
		} else {
			from, to := "00127", "004" // back and forth
			if v%2 == 1 {
				from, to = to, from
			}
			data = fmt.Appendf(nil, `{"id":"x-%d","type":"transferred","dossier":"D%06d","unit":%q,"at":"2024-03-04T02:00:00Z","to_unit":%q,"version":%d,"recorded_at":"2024-03-04T02:00:00.123456789Z"}`, i, d, from, to, v)
		}
		if _, err := js.PublishAsync(eventstore.Subject(fmt.Sprintf("D%06d", d)), data); err != nil {
			b.Fatal(err)
		}
		if i%10_000 == 9_999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	for m.Transparency.TreeSize() < events {
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Close(); err != nil {
		b.Fatal(err)
	}
	key, err := transparency.ParseVerifierKey(filepath.Join(dir, "checkpoint.key.pub"))
	if err != nil {
		b.Fatal(err)
	}
	store, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, Listen: "127.0.0.1:0", ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	v := &transparency.Verifier{Ledger: store, Checkpoints: store, Key: key, TreeFile: filepath.Join(dir, "tree.hashes")}
	b.ResetTimer()
	for b.Loop() {
		sum, err := v.Verify(ctx)
		if err != nil || sum.Events != events || sum.Checkpoints < events/transparency.DefaultCheckpointEvery {
			b.Fatalf("verify: %+v %v", sum, err)
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
