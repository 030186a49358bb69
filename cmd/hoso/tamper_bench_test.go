package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/transparency"
)

// BenchmarkAppendTamperEvidence appends `received` events of new dossiers
// through the ingest service, from 64 goroutines, to two ledgers open side
// by side: the Merkle tree and checkpoints off on one and on on the other.
// The events go in ten parts that alternate between the two (each part's
// first ledger alternates too), so load that changes during the run, and
// whatever a process accumulates from one measurement to the next, weigh
// on both alike. A part's time includes waiting for the read model to apply
// every event appended and, with the tree on, for the tree to hash them. It reports events/s of each and how
// much slower the tree makes appends.
func BenchmarkAppendTamperEvidence(b *testing.B) {
	const parts, senders = 10, 64
	open := func(on bool) *Main {
		m := NewMain()
		m.Config.DataDir = filepath.Join(b.TempDir(), "data")
		m.Config.HTTPAddr, m.Config.NATSListen, m.Config.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "error"
		m.Config.TamperEvidence = on
		m.Now = func() time.Time { return testNow }
		if err := m.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		return m
	}
	ledgers := [2]*Main{open(false), open(true)}
	var elapsed [2]time.Duration
	var appended [2]int
	ctx := context.Background()
	b.ResetTimer()
	for p := range parts {
		n := b.N / parts
		if p == parts-1 {
			n = b.N - (parts-1)*(b.N/parts)
		}
		for k := range 2 {
			i := (p + k) % 2 // ledger 0 is off, 1 is on
			m := ledgers[i]
			first := appended[i]
			start := time.Now()
			err := fanOut(n, senders, func(j int) error {
				e, err := hoso.DecodeEvent(fmt.Appendf(nil, `{"type":"received","dossier":"B%d","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`, first+j))
				if err != nil {
					return err
				}
				_, err = m.Ingester.Append(ctx, e)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			appended[i] += n
			// A part ends when its ledger has done all its work, so none of
			// it spills into the other ledger's part: the read model has
			// applied every event, and the tree, if on, has hashed them.
			for m.Projector.CaughtUp(ctx) != nil || (i == 1 && m.Transparency.TreeSize() < uint64(appended[i])) {
				time.Sleep(100 * time.Microsecond)
			}
			elapsed[i] += time.Since(start)
		}
	}
	b.StopTimer()
	off := float64(appended[0]) / elapsed[0].Seconds()
	on := float64(appended[1]) / elapsed[1].Seconds()
	b.ReportMetric(off, "events/s-tree-off")
	b.ReportMetric(on, "events/s-tree-on")
	b.ReportMetric(100*(1-on/off), "%slower")
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
