package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The ingest benchmarks and their raw baselines send the same bytes: a
// received event per new dossier, with the same per-dossier headers
// (Nats-Msg-Id and Nats-Expected-Last-Subject-Sequence). Compare them with
//
//	go test -run '^$' -bench 'Append|Ingest|Raw' -benchtime 30000x -count 3 ./eventstore
//
// and read the events/s column. The Ingest benchmarks start from the bytes
// a door receives: they also parse and decode the body and encode the answer.

const benchSenders = 32

func benchEvent(i int) []byte {
	wards := [...]string{"00127", "00130", "00133", "00136", "00139", "00145", "00148", "00151"}
	at := time.Date(2024, 1, 2, 1, 0, 0, 0, time.UTC).Add(time.Duration(i%20000) * 37 * time.Second)
	return fmt.Appendf(nil, `{"type":"received","dossier":"B-%08d","unit":"%s","at":"%s","procedure":"1.001776","channel":"online","days":5}`,
		i, wards[i%len(wards)], at.In(hoso.VietnamZone).Format(time.RFC3339))
}

func benchDecoded(b *testing.B, n int) []*hoso.Event {
	b.Helper()
	evs := make([]*hoso.Event, n)
	for i := range evs {
		e, err := hoso.DecodeEvent(benchEvent(i))
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = e
	}
	return evs
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendBatch is the ingest service with batches of 1,000 events,
// as an NDJSON POST or a NATS request hands them over.
func BenchmarkAppendBatch(b *testing.B) {
	in := newIngester(b, openStore(b))
	evs := benchDecoded(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < len(evs); i += 1000 {
		for _, r := range in.AppendBatch(ctx, evs[i:min(i+1000, len(evs))]) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	reportRate(b)
}

// BenchmarkAppendConcurrent is single events from 32 concurrent senders.
func BenchmarkAppendConcurrent(b *testing.B) {
	in := newIngester(b, openStore(b))
	evs := benchDecoded(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	fanOut(b, len(evs), func(i int) error {
		_, err := in.Append(ctx, evs[i])
		return err
	})
	reportRate(b)
}

// BenchmarkIngestNDJSON is what both doors do with an NDJSON body of 1,000
// events: parse and decode it, append the events, encode the batch answer.
func BenchmarkIngestNDJSON(b *testing.B) {
	in := newIngester(b, openStore(b))
	var bodies [][]byte
	for i := 0; i < b.N; i += 1000 {
		var body []byte
		for j := i; j < min(i+1000, b.N); j++ {
			body = append(append(body, benchEvent(j)...), '\n')
		}
		bodies = append(bodies, body)
	}
	ctx := context.Background()
	b.ResetTimer()
	for _, body := range bodies {
		p, err := hoso.ParsePayload(body, true)
		if err != nil {
			b.Fatal(err)
		}
		results := hoso.Ingest(ctx, in, p)
		for _, r := range results {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		hoso.AppendBatchAnswer(make([]byte, 0, 96*len(results)+16), results) // sized as the doors size it
	}
	reportRate(b)
}

// BenchmarkIngestConcurrent is single events from 32 concurrent senders,
// each from its JSON bytes to its encoded answer.
func BenchmarkIngestConcurrent(b *testing.B) {
	in := newIngester(b, openStore(b))
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = benchEvent(i)
	}
	ctx := context.Background()
	b.ResetTimer()
	fanOut(b, len(bodies), func(i int) error {
		p, err := hoso.ParsePayload(bodies[i], false)
		if err != nil {
			return err
		}
		r := hoso.Ingest(ctx, in, p)[0]
		if r.Err != nil {
			return r.Err
		}
		r.Result.AppendJSON(nil)
		return nil
	})
	reportRate(b)
}

// rawStream is a stream beside the ledger's with the same limits, for the
// baselines.
func rawStream(b *testing.B) (jetstream.JetStream, func(i int) *nats.Msg) {
	b.Helper()
	s := openStore(b)
	js := s.JetStream()
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage,
		Duplicates: eventstore.DefaultDuplicateWindow, DenyDelete: true, DenyPurge: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	data := make([][]byte, b.N)
	for i := range data {
		data[i] = benchEvent(i)
	}
	return js, func(i int) *nats.Msg {
		subj := fmt.Sprintf("raw.B-%08d", i)
		m := &nats.Msg{Subject: subj, Data: data[i], Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, subj)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		return m
	}
}

// BenchmarkRawAsyncPublish is the baseline of AppendBatch.
func BenchmarkRawAsyncPublish(b *testing.B) {
	js, msg := rawStream(b)
	b.ResetTimer()
	for i := range b.N {
		if _, err := js.PublishMsgAsync(msg(i)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	reportRate(b)
}

// BenchmarkRawSyncPublishConcurrent is the baseline of AppendConcurrent.
func BenchmarkRawSyncPublishConcurrent(b *testing.B) {
	js, msg := rawStream(b)
	ctx := context.Background()
	b.ResetTimer()
	fanOut(b, b.N, func(i int) error {
		_, err := js.PublishMsg(ctx, msg(i))
		return err
	})
	reportRate(b)
}

// fanOut runs f(0..n-1) on benchSenders goroutines and fails b on an error.
func fanOut(b *testing.B, n int, f func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range benchSenders {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					failed.Store(true)
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
