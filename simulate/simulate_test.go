package simulate_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/simulate"
)

func registry(t testing.TB) (*hoso.Units, *hoso.Calendar) {
	t.Helper()
	units, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	cal, err := hoso.NewCalendar()
	if err != nil {
		t.Fatal(err)
	}
	return units, cal
}

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// generate runs a simulation and returns its NDJSON and summary.
func generate(t *testing.T, cfg simulate.Config) ([]byte, []*hoso.Event, *simulate.Summary) {
	t.Helper()
	units, cal := registry(t)
	g, err := simulate.New(units, cal, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	var events []*hoso.Event
	sum, err := g.Run(context.Background(), func(e *hoso.Event) error {
		out = simulate.AppendLine(out, e)
		events = append(events, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, events, sum
}

func TestSimulateIsDeterministicAndValid(t *testing.T) {
	cfg := simulate.Config{Scope: "004", From: date("2024-01-01"), To: date("2024-03-31"), Dossiers: 3000, Seed: 7, LateShare: 0.1}
	a, events, sum := generate(t, cfg)
	b, _, _ := generate(t, cfg)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
	c, _, _ := generate(t, simulate.Config{Scope: "004", From: date("2024-01-01"), To: date("2024-03-31"), Dossiers: 3000, Seed: 8, LateShare: 0.1})
	if bytes.Equal(a, c) {
		t.Fatal("two seeds gave the same events")
	}
	if sum.Dossiers != 3000 {
		t.Fatalf("dossiers: got %d, want 3000", sum.Dossiers)
	}
	if int(sum.Events) != len(events) {
		t.Fatalf("events: summary says %d, emitted %d", sum.Events, len(events))
	}

	// Every line decodes as the API would; each dossier folds (due from
	// the calendar as the ingester computes it); events are in time order.
	units, cal := registry(t)
	dossiers := map[string]*hoso.Dossier{}
	ids := map[string]bool{}
	types := map[hoso.EventType]int{}
	last := time.Time{}
	for i, line := range bytes.Split(bytes.TrimSpace(a), []byte("\n")) {
		e, err := hoso.DecodeEvent(line)
		if err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		if e.At.Before(last) {
			t.Fatalf("line %d: %s is before the previous line's %s", i+1, e.At, last)
		}
		last = e.At
		if ids[e.ID] {
			t.Fatalf("line %d: id %q repeated", i+1, e.ID)
		}
		ids[e.ID] = true
		types[e.Type]++
		for _, code := range []string{e.Unit, e.ToUnit} {
			if _, ok := units.At(code, e.At); code != "" && !ok {
				t.Fatalf("line %d: unit %q unknown on %s", i+1, code, e.At)
			}
		}
		if e.Type == hoso.EventReceived {
			if e.Due, err = cal.Due(units.Province(e.Unit, e.At), e.At, e.Days); err != nil {
				t.Fatal(err)
			}
		}
		d := dossiers[e.Dossier]
		if d == nil {
			d = &hoso.Dossier{}
			dossiers[e.Dossier] = d
		}
		if err := d.Apply(e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	for _, typ := range []hoso.EventType{hoso.EventReceived, hoso.EventTransferred, hoso.EventSupplementRequested,
		hoso.EventSupplementReceived, hoso.EventExtended, hoso.EventResolved, hoso.EventReturned, hoso.EventWithdrawn} {
		if types[typ] == 0 {
			t.Errorf("no %s event in 3000 dossiers", typ)
		}
	}
	tot := sum.Total
	if tot.Received != tot.ReceivedOnline+tot.ReceivedDirect+tot.ReceivedPostal {
		t.Errorf("received %d is not the sum of its channels", tot.Received)
	}
	if tot.Resolved != tot.ResolvedEarly+tot.ResolvedOnTime+tot.ResolvedLate {
		t.Errorf("resolved %d is not the sum of its classes", tot.Resolved)
	}
	if tot.Pending == 0 {
		t.Error("no dossier open at the end of the period")
	}
	if late := float64(tot.ResolvedLate) / float64(tot.Resolved); math.Abs(late-0.1) > 0.04 {
		t.Errorf("late share %.3f, configured 0.1", late)
	}
}

func TestSimulateShape(t *testing.T) {
	_, events, _ := generate(t, simulate.Config{Scope: "01", From: date("2024-01-01"), To: date("2024-12-31"), Dossiers: 20000, Seed: 1})
	perMonth := map[time.Month]int{}
	weekday := map[time.Weekday]int{}
	inHours := 0
	received := 0
	for _, e := range events {
		if e.Type != hoso.EventReceived {
			continue
		}
		received++
		local := e.At.In(hoso.VietnamZone)
		perMonth[local.Month()]++
		weekday[local.Weekday()]++
		if h := local.Hour(); h >= 8 && h < 17 {
			inHours++
		}
	}
	if perMonth[time.December] <= perMonth[time.February] || perMonth[time.December] <= perMonth[time.June] {
		t.Errorf("no year-end peak: December %d, February %d, June %d", perMonth[time.December], perMonth[time.February], perMonth[time.June])
	}
	if weekday[time.Monday] <= weekday[time.Friday] || weekday[time.Sunday]*10 > weekday[time.Wednesday] {
		t.Errorf("weekday shape: %v", weekday)
	}
	if inHours*10 < received*8 {
		t.Errorf("only %d of %d dossiers arrived in office hours", inHours, received)
	}
}

func TestSimulateNeverAfterNow(t *testing.T) {
	now := time.Date(2024, 3, 15, 10, 30, 0, 0, hoso.VietnamZone)
	_, events, sum := generate(t, simulate.Config{Scope: "00127", From: date("2024-03-01"), To: date("2024-12-31"), Dossiers: 500, Seed: 3, Now: now})
	for _, e := range events {
		if e.At.After(now) {
			t.Fatalf("%s %s at %s is after now %s", e.Dossier, e.Type, e.At, now)
		}
	}
	if sum.Dossiers == 0 || sum.Total.Pending == 0 {
		t.Fatalf("want dossiers, some open, got %+v", sum.Total)
	}
}

func TestSimulateRejectsBadConfig(t *testing.T) {
	units, cal := registry(t)
	for _, tc := range []struct {
		name  string
		cfg   simulate.Config
		field string
	}{
		{"unknown unit", simulate.Config{Scope: "99999", From: date("2024-01-01"), To: date("2024-01-31")}, "unit"},
		{"late share", simulate.Config{Scope: "01", From: date("2024-01-01"), To: date("2024-01-31"), LateShare: 2}, "late"},
		{"negative dossiers", simulate.Config{Scope: "01", From: date("2024-01-01"), To: date("2024-01-31"), Dossiers: -1}, "dossiers"},
		{"period reversed", simulate.Config{Scope: "01", From: date("2024-02-01"), To: date("2024-01-31")}, "to"},
		{"level", simulate.Config{Scope: "01", From: date("2024-01-01"), To: date("2024-01-31"), Level: "street"}, "level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := simulate.New(units, cal, tc.cfg)
			var he *hoso.Error
			if !asError(err, &he) || he.Field != tc.field {
				t.Fatalf("got %v, want an error on field %q", err, tc.field)
			}
		})
	}
}

func asError(err error, target **hoso.Error) bool { return errors.As(err, target) }
