package projections_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// metricsWorld is a real stream and read model holding, at metricsNow
// (Friday 2024-03-08 15:00 in Vietnam), in ward 00127 of quận Long Biên:
// one dossier overdue, one due within 8 working hours (Monday 09:00), one
// due later, one paused, one resolved on time and one resolved late; and in
// ward 00118 one overdue dossier and one due later that day.
var metricsNow = vn(2024, 3, 8, 15, 0)

func metricsWorld(t *testing.T) (*eventstore.Store, *follower) {
	t.Helper()
	store, err := eventstore.Open(context.Background(), eventstore.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	u, c := registry(t)
	in := eventstore.NewIngester(store, u, c, func() time.Time { return metricsNow })
	f := follow(t, store)
	recv := func(code, unit string, due time.Time) *hoso.Event {
		return &hoso.Event{Type: hoso.EventReceived, Dossier: code, Unit: unit, At: vn(2024, 3, 4, 9, 0),
			Procedure: "1.001776", Channel: hoso.ChannelOnline, Due: due}
	}
	events := []*hoso.Event{
		recv("overdue", "00127", vn(2024, 3, 7, 17, 0)),
		recv("soon", "00127", vn(2024, 3, 11, 9, 0)),
		recv("later", "00127", vn(2024, 3, 12, 17, 0)),
		recv("paused", "00127", vn(2024, 3, 6, 17, 0)),
		{Type: hoso.EventSupplementRequested, Dossier: "paused", Unit: "00127", At: vn(2024, 3, 5, 9, 0), Reason: "thiếu giấy tờ"},
		recv("ontime", "00127", vn(2024, 3, 6, 17, 0)),
		{Type: hoso.EventResolved, Dossier: "ontime", Unit: "00127", At: vn(2024, 3, 6, 10, 0)},
		recv("late", "00127", vn(2024, 3, 5, 17, 0)),
		{Type: hoso.EventResolved, Dossier: "late", Unit: "00127", At: vn(2024, 3, 7, 10, 0)},
		recv("other", "00118", vn(2024, 3, 8, 11, 0)),
		recv("tonight", "00118", vn(2024, 3, 8, 16, 30)),
	}
	for _, e := range events {
		if _, err := in.Append(context.Background(), e); err != nil {
			t.Fatalf("%s %s: %v", e.Dossier, e.Type, err)
		}
	}
	f.sync(t)
	return store, f
}

func newCollector(t *testing.T, store *eventstore.Store, f *follower, now time.Time) *projections.Collector {
	u, c := registry(t)
	return &projections.Collector{DB: f.db, Projector: f.p, Ledger: store, Units: u, Calendar: c,
		Now: func() time.Time { return now }}
}

func TestCollectorValues(t *testing.T) {
	store, f := metricsWorld(t)
	col := newCollector(t, store, f, metricsNow)
	want := `
# HELP hoso_open_dossiers Open dossiers owned by a unit, by deadline state at the scrape's instant, read from the read model.
# TYPE hoso_open_dossiers gauge
hoso_open_dossiers{deadline_state="due_soon",district="004",level="ward",province="01",unit="00118"} 1
hoso_open_dossiers{deadline_state="in_deadline",district="004",level="ward",province="01",unit="00118"} 0
hoso_open_dossiers{deadline_state="overdue",district="004",level="ward",province="01",unit="00118"} 1
hoso_open_dossiers{deadline_state="paused",district="004",level="ward",province="01",unit="00118"} 0
hoso_open_dossiers{deadline_state="due_soon",district="004",level="ward",province="01",unit="00127"} 1
hoso_open_dossiers{deadline_state="in_deadline",district="004",level="ward",province="01",unit="00127"} 1
hoso_open_dossiers{deadline_state="overdue",district="004",level="ward",province="01",unit="00127"} 1
hoso_open_dossiers{deadline_state="paused",district="004",level="ward",province="01",unit="00127"} 1
# HELP hoso_dossiers_resolved_total Dossiers resolved by the unit that owned them, by result against the statutory due, since the ledger began.
# TYPE hoso_dossiers_resolved_total counter
hoso_dossiers_resolved_total{district="004",level="ward",province="01",result="early",unit="00127"} 0
hoso_dossiers_resolved_total{district="004",level="ward",province="01",result="late",unit="00127"} 1
hoso_dossiers_resolved_total{district="004",level="ward",province="01",result="on_time",unit="00127"} 1
# HELP hoso_projection_lag_events Events in the stream not yet applied to the read model.
# TYPE hoso_projection_lag_events gauge
hoso_projection_lag_events 0
# HELP hoso_projection_lag_seconds While events wait to be applied, seconds since the stream stored the last applied one (or since start when none was); 0 when caught up.
# TYPE hoso_projection_lag_seconds gauge
hoso_projection_lag_seconds 0
# HELP hoso_stream_last_seq Sequence of the last event in the stream HOSO_EVENTS.
# TYPE hoso_stream_last_seq gauge
hoso_stream_last_seq 11
# HELP hoso_projection_applied_seq Stream sequence the SQLite read model has applied and committed.
# TYPE hoso_projection_applied_seq gauge
hoso_projection_applied_seq 11
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// A due_soon horizon of 2 working hours ends Friday 17:00: the Monday
	// dossier is then in deadline.
	col.DueSoon = 2 * time.Hour
	if got := testutil.ToFloat64(gaugeOf(t, col, `deadline_state="due_soon"`, `unit="00127"`)); got != 0 {
		t.Fatalf("due_soon with a 2h horizon = %v, want 0", got)
	}
}

// gaugeOf collects col and returns the one metric whose labels include all
// of match, as a collector of its own for testutil.ToFloat64.
func gaugeOf(t *testing.T, col prometheus.Collector, match ...string) prometheus.Collector {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	col.Collect(ch)
	close(ch)
	var found []prometheus.Metric
	for m := range ch {
		s := m.Desc().String()
		if !strings.Contains(s, "hoso_open_dossiers") {
			continue
		}
		text := metricText(t, m)
		ok := true
		for _, want := range match {
			ok = ok && strings.Contains(text, want)
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d metrics match %v", len(found), match)
	}
	return constCollector{found[0]}
}

type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

func metricText(t *testing.T, m prometheus.Metric) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(constCollector{m})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		b.WriteString(l.GetName() + `="` + l.GetValue() + `" `)
	}
	return b.String()
}

// TestOverdueMatchesReport checks that the read model's overdue count of
// each unit equals the report's pending_overdue for the same instant. The
// backlog counts the dossiers open now; the report of today counts those
// open at the end of today; with no event after now, both describe the end
// of today, so the backlog is taken at that instant.
func TestOverdueMatchesReport(t *testing.T) {
	store, f := metricsWorld(t)
	u, _ := registry(t)
	for _, day := range []string{metricsNow.Format(time.DateOnly)} {
		d, err := time.ParseInLocation(time.DateOnly, day, hoso.VietnamZone)
		if err != nil {
			t.Fatal(err)
		}
		endOfDay := d.AddDate(0, 0, 1) // the first instant after the day
		backlog, err := f.db.Backlog(context.Background(), endOfDay, endOfDay)
		if err != nil {
			t.Fatal(err)
		}
		gauge := map[string]int64{}
		for _, b := range backlog {
			gauge[b.Unit] = b.Overdue
		}
		if gauge["00118"] != 2 || gauge["00127"] != 1 {
			t.Fatalf("%s: overdue at the end of the day %v, want 00118: 2, 00127: 1", day, gauge)
		}
		rep, err := f.db.Report(context.Background(), u, projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: day, To: day})
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, row := range rep.Rows {
			if row.PendingOverdue != gauge[row.Unit] {
				t.Errorf("%s unit %s: report pending_overdue %d, read model overdue %d", day, row.Unit, row.PendingOverdue, gauge[row.Unit])
			}
			seen += int(row.PendingOverdue)
		}
		var all int64
		for _, n := range gauge {
			all += n
		}
		if int64(seen) != all {
			t.Errorf("%s: report rows hold %d overdue, read model %d", day, seen, all)
		}
		// The collector at that instant says the same.
		col := newCollector(t, store, f, endOfDay)
		if got := testutil.ToFloat64(gaugeOf(t, col, `deadline_state="overdue"`, `unit="00127"`)); int64(got) != gauge["00127"] {
			t.Errorf("%s: collector overdue of 00127 = %v, backlog %d", day, got, gauge["00127"])
		}
	}
	// At the world's own instant, the dossier due tonight is not overdue
	// yet, while the end-of-day report already counts it.
	col := newCollector(t, store, f, metricsNow)
	if got := testutil.ToFloat64(gaugeOf(t, col, `deadline_state="overdue"`, `unit="00118"`)); got != 1 {
		t.Errorf("collector overdue of 00118 at 15:00 = %v, want 1", got)
	}
}

// TestCollectorProvinceHorizon: the due_soon horizon follows the calendar
// of the unit's province. With Monday and Tuesday off in Hà Nội (01), one
// working day from Friday 15:00 ends on Wednesday there, so the dossier
// due Tuesday 17:00 is due soon.
func TestCollectorProvinceHorizon(t *testing.T) {
	store, f := metricsWorld(t)
	cal, err := hoso.NewCalendar(strings.NewReader("province,date,kind,hours,name\n01,2024-03-11,holiday,,Nghỉ bù\n01,2024-03-12,holiday,,Nghỉ bù\n"))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(t, store, f, metricsNow)
	col.Calendar = cal
	for state, want := range map[string]float64{"due_soon": 2, "in_deadline": 0} {
		if got := testutil.ToFloat64(gaugeOf(t, col, `deadline_state="`+state+`"`, `unit="00127"`)); got != want {
			t.Errorf("00127 %s = %v, want %v", state, got, want)
		}
	}
}
