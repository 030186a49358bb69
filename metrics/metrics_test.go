package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var now = time.Date(2024, 3, 4, 3, 0, 0, 0, time.UTC)

func ingester(t *testing.T) *eventstore.Ingester {
	t.Helper()
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	units, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	cal, err := hoso.NewCalendar()
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.NewIngester(store, units, cal, func() time.Time { return now })
}

func received(code string) *hoso.Event {
	return &hoso.Event{Type: hoso.EventReceived, Dossier: code, Unit: "00127", At: now.Add(-time.Hour),
		Procedure: "1.001776", Channel: hoso.ChannelDirect, Days: 3}
}

func TestEventsCounts(t *testing.T) {
	reg := metrics.NewRegistry()
	ev := metrics.NewEvents(ingester(t), reg)
	ctx := context.Background()
	if _, err := ev.Append(ctx, received("A-1")); err != nil {
		t.Fatal(err)
	}
	if res, err := ev.Append(ctx, received("A-1")); err != nil || !res.Duplicate {
		t.Fatalf("re-send: %+v, %v", res, err)
	}
	bad := received("A-2")
	bad.Unit = "99999"
	results := ev.AppendBatch(ctx, []*hoso.Event{
		received("A-3"),
		bad,
		{Type: hoso.EventResolved, Dossier: "nobody", Unit: "00127", At: now.Add(-time.Minute)},
		{Type: hoso.EventTransferred, Dossier: "A-1", Unit: "00127", ToUnit: "004", At: now.Add(-time.Minute)},
	})
	if results[0].Err != nil || results[1].Err == nil || results[2].Err == nil || results[3].Err != nil {
		t.Fatalf("batch results %+v", results)
	}

	want := `
# HELP hoso_events_appended_total Events appended to the ledger, by event type (re-sent duplicates are not counted).
# TYPE hoso_events_appended_total counter
hoso_events_appended_total{type="extended"} 0
hoso_events_appended_total{type="overdue"} 0
hoso_events_appended_total{type="received"} 2
hoso_events_appended_total{type="resolved"} 0
hoso_events_appended_total{type="returned"} 0
hoso_events_appended_total{type="supplement_received"} 0
hoso_events_appended_total{type="supplement_requested"} 0
hoso_events_appended_total{type="transferred"} 1
hoso_events_appended_total{type="withdrawn"} 0
# HELP hoso_events_rejected_total Events refused by the ingest service, by error code.
# TYPE hoso_events_rejected_total counter
hoso_events_rejected_total{reason="conflict"} 0
hoso_events_rejected_total{reason="forbidden"} 0
hoso_events_rejected_total{reason="internal"} 0
hoso_events_rejected_total{reason="invalid"} 1
hoso_events_rejected_total{reason="not_found"} 1
hoso_events_rejected_total{reason="too_large"} 0
hoso_events_rejected_total{reason="unauthorized"} 0
hoso_events_rejected_total{reason="unavailable"} 0
hoso_events_rejected_total{reason="unsupported_media_type"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hoso_events_appended_total", "hoso_events_rejected_total"); err != nil {
		t.Fatal(err)
	}
	// Two single appends and one batch of four were timed.
	if n := testutil.CollectAndCount(reg, "hoso_ingest_duration_seconds"); n != 2 {
		t.Fatalf("%d ingest histograms, want 2 (event, batch)", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "hoso_ingest_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	if counts[metrics.RequestEvent] != 2 || counts[metrics.RequestBatch] != 1 {
		t.Fatalf("ingest observations %v, want event 2, batch 1", counts)
	}
}

func TestHTTPObserveAndLint(t *testing.T) {
	reg := metrics.NewRegistry()
	metrics.NewEvents(ingester(t), reg)
	h := metrics.NewHTTP(reg)
	h.Observe("POST /v1/events", 201, 3*time.Millisecond)
	h.Observe("", 404, time.Millisecond)
	h.Observe("", 404, time.Millisecond)

	srv := httptest.NewServer(metrics.Handler(reg, nil))
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, want := range []string{
		`hoso_http_request_duration_seconds_count{code="201",route="POST /v1/events"} 1`,
		`hoso_http_request_duration_seconds_count{code="404",route="unmatched"} 2`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "hoso_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s, %v", resp.Status, err)
	}
	return string(b)
}
