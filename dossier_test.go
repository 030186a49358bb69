package hoso_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
)

var t0 = time.Date(2024, 3, 4, 2, 0, 0, 0, time.UTC) // Monday 09:00 in Vietnam

// history returns the events that bring a dossier into state s.
func history(s hoso.State) []*hoso.Event {
	ev := func(typ hoso.EventType, h int) *hoso.Event {
		return &hoso.Event{Type: typ, Dossier: "A1", Unit: "00127", At: t0.Add(time.Duration(h) * time.Hour)}
	}
	recv := ev(hoso.EventReceived, 0)
	recv.Procedure, recv.Channel, recv.Due = "1.001776", hoso.ChannelDirect, t0.Add(72*time.Hour)
	switch s {
	case hoso.StateNone:
		return nil
	case hoso.StateProcessing:
		return []*hoso.Event{recv}
	case hoso.StateAwaitingSupplement:
		return []*hoso.Event{recv, ev(hoso.EventSupplementRequested, 1)}
	case hoso.StateResolved:
		r := ev(hoso.EventResolved, 1)
		r.Outcome = hoso.OutcomeApproved
		return []*hoso.Event{recv, r}
	case hoso.StateReturned:
		return append(history(hoso.StateResolved), ev(hoso.EventReturned, 2))
	case hoso.StateWithdrawn:
		return []*hoso.Event{recv, ev(hoso.EventWithdrawn, 1)}
	}
	panic(s)
}

func nextEvent(typ hoso.EventType, d *hoso.Dossier) *hoso.Event {
	e := &hoso.Event{Type: typ, Dossier: "A1", Unit: "00127", At: t0.Add(10 * time.Hour)}
	switch typ {
	case hoso.EventReceived:
		e.Procedure, e.Channel, e.Due = "1.001776", hoso.ChannelOnline, t0.Add(80*time.Hour)
	case hoso.EventTransferred:
		e.ToUnit = "004"
	case hoso.EventSupplementReceived, hoso.EventExtended:
		e.Due = t0.Add(100 * time.Hour)
	case hoso.EventOverdue:
		e.At = d.Due
	case hoso.EventResolved:
		e.Outcome = hoso.OutcomeApproved
	}
	return e
}

func TestStateMachine(t *testing.T) {
	allowed := map[hoso.State][]hoso.EventType{
		hoso.StateNone:               {hoso.EventReceived},
		hoso.StateProcessing:         {hoso.EventTransferred, hoso.EventSupplementRequested, hoso.EventExtended, hoso.EventOverdue, hoso.EventResolved, hoso.EventWithdrawn},
		hoso.StateAwaitingSupplement: {hoso.EventSupplementReceived, hoso.EventResolved, hoso.EventWithdrawn},
		hoso.StateResolved:           {hoso.EventReturned},
		hoso.StateReturned:           nil,
		hoso.StateWithdrawn:          nil,
	}
	wantState := map[hoso.EventType]hoso.State{
		hoso.EventReceived: hoso.StateProcessing, hoso.EventTransferred: hoso.StateProcessing,
		hoso.EventSupplementRequested: hoso.StateAwaitingSupplement, hoso.EventSupplementReceived: hoso.StateProcessing,
		hoso.EventExtended: hoso.StateProcessing, hoso.EventOverdue: hoso.StateProcessing,
		hoso.EventResolved: hoso.StateResolved, hoso.EventReturned: hoso.StateReturned, hoso.EventWithdrawn: hoso.StateWithdrawn,
	}
	for from, ok := range allowed {
		for _, typ := range hoso.EventTypes {
			name := string(from)
			if name == "" {
				name = "none"
			}
			t.Run(name+"/"+string(typ), func(t *testing.T) {
				d, err := hoso.Fold(history(from))
				if err != nil {
					t.Fatal(err)
				}
				before := *d
				e := nextEvent(typ, d)
				err = d.Apply(e)
				isAllowed := false
				for _, a := range ok {
					isAllowed = isAllowed || a == typ
				}
				if isAllowed {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if d.State != wantState[typ] || d.Version != before.Version+1 {
						t.Fatalf("state %s version %d, want %s %d", d.State, d.Version, wantState[typ], before.Version+1)
					}
					return
				}
				if err == nil {
					t.Fatalf("allowed %s from %s", typ, name)
				}
				if *d != before {
					t.Error("a refused event changed the dossier")
				}
				if from == hoso.StateNone {
					if hoso.ErrorCode(err) != hoso.ENOTFOUND {
						t.Errorf("code %s, want not_found: %v", hoso.ErrorCode(err), err)
					}
					return
				}
				if hoso.ErrorCode(err) != hoso.EINVALID || !strings.Contains(err.Error(), "is "+string(from)) {
					t.Errorf("error %q does not name the current state %s", err, from)
				}
			})
		}
	}
}

func TestApplyRules(t *testing.T) {
	d, _ := hoso.Fold(history(hoso.StateProcessing))

	early := nextEvent(hoso.EventResolved, d)
	early.At = t0.Add(-time.Hour)
	if err := d.Check(early); fieldOf(err) != "at" {
		t.Errorf("event before the previous one: %v", err)
	}

	v := 3
	stale := nextEvent(hoso.EventResolved, d)
	stale.ExpectedVersion = &v
	if err := d.Check(stale); hoso.ErrorCode(err) != hoso.ECONFLICT || !strings.Contains(err.Error(), "expected_version") {
		t.Errorf("expected_version mismatch: %v", err)
	}
	v = 1
	if err := d.Check(stale); err != nil {
		t.Errorf("expected_version match: %v", err)
	}

	self := nextEvent(hoso.EventTransferred, d)
	self.ToUnit = d.Owner
	if err := d.Check(self); fieldOf(err) != "to_unit" {
		t.Errorf("transfer to the owner: %v", err)
	}

	wrongDue := nextEvent(hoso.EventOverdue, d)
	wrongDue.At = d.Due.Add(time.Minute)
	if err := d.Check(wrongDue); fieldOf(err) != "at" {
		t.Errorf("overdue not at due: %v", err)
	}
	if err := d.Apply(nextEvent(hoso.EventOverdue, d)); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(nextEvent(hoso.EventOverdue, d)); hoso.ErrorCode(err) != hoso.ECONFLICT {
		t.Errorf("second overdue for the same due: %v", err)
	}
}

func TestOverdueAgainAfterSupplement(t *testing.T) {
	d, _ := hoso.Fold(history(hoso.StateProcessing))
	steps := []*hoso.Event{nextEvent(hoso.EventOverdue, d)}
	for _, s := range steps {
		if err := d.Apply(s); err != nil {
			t.Fatal(err)
		}
	}
	req := &hoso.Event{Type: hoso.EventSupplementRequested, Dossier: "A1", Unit: "00127", At: d.Due.Add(time.Hour)}
	rcv := &hoso.Event{Type: hoso.EventSupplementReceived, Dossier: "A1", Unit: "00127", At: d.Due.Add(2 * time.Hour), Due: d.Due.Add(240 * time.Hour)}
	for _, e := range []*hoso.Event{req, rcv} {
		if err := d.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if d.OverdueMarked {
		t.Fatal("still marked overdue after a new due")
	}
	if err := d.Apply(&hoso.Event{Type: hoso.EventOverdue, Dossier: "A1", Unit: "00127", At: d.Due}); err != nil {
		t.Fatalf("overdue for the new due: %v", err)
	}
}

func TestClassifyResolution(t *testing.T) {
	vn := hoso.VietnamZone
	due := time.Date(2024, 3, 8, 17, 0, 0, 0, vn)
	tests := []struct {
		name     string
		resolved time.Time
		want     hoso.Classification
	}{
		{"the day before", time.Date(2024, 3, 7, 16, 0, 0, 0, vn), hoso.ClassEarly},
		{"due day morning", time.Date(2024, 3, 8, 8, 0, 0, 0, vn), hoso.ClassOnTime},
		{"due day 23:59 local", time.Date(2024, 3, 8, 23, 59, 0, 0, vn), hoso.ClassOnTime},
		{"next day 00:01 local", time.Date(2024, 3, 9, 0, 1, 0, 0, vn), hoso.ClassLate},
		{"due day 23:59 local written in UTC", time.Date(2024, 3, 8, 16, 59, 0, 0, time.UTC), hoso.ClassOnTime},
		{"next day 00:01 local written in UTC", time.Date(2024, 3, 8, 17, 1, 0, 0, time.UTC), hoso.ClassLate},
	}
	for _, tt := range tests {
		if got := hoso.ClassifyResolution(tt.resolved, due); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestExtendedDoesNotMakeLateOnTime(t *testing.T) {
	d, _ := hoso.Fold(history(hoso.StateProcessing))
	ext := nextEvent(hoso.EventExtended, d)
	ext.Due = d.Due.Add(10 * 24 * time.Hour)
	if err := d.Apply(ext); err != nil {
		t.Fatal(err)
	}
	res := nextEvent(hoso.EventResolved, d)
	res.At = d.Due.Add(3 * 24 * time.Hour)
	if err := d.Apply(res); err != nil {
		t.Fatal(err)
	}
	if d.Result != hoso.ClassLate {
		t.Errorf("resolved after the statutory due but before the promised date: %s, want late", d.Result)
	}
}

func TestClassifyOpen(t *testing.T) {
	d, _ := hoso.Fold(history(hoso.StateProcessing))
	if c := d.Classify(d.Due); c != hoso.ClassInDeadline {
		t.Errorf("at due: %s", c)
	}
	if c := d.Classify(d.Due.Add(time.Second)); c != hoso.ClassOverdue {
		t.Errorf("after due: %s", c)
	}
	p, _ := hoso.Fold(history(hoso.StateAwaitingSupplement))
	if c := p.Classify(p.Due.Add(time.Hour)); c != hoso.ClassPaused {
		t.Errorf("awaiting supplement: %s", c)
	}
}

// A desk event that happened before the due but reached the ledger after the
// deadline watcher marked the dossier is accepted and classified by its own
// time.
func TestLateDeskEventAfterOverdueMarker(t *testing.T) {
	at := time.Date(2024, 3, 4, 2, 0, 0, 0, time.UTC)
	due := at.Add(48 * time.Hour)
	d := &hoso.Dossier{}
	steps := []*hoso.Event{
		{Type: hoso.EventReceived, Dossier: "L1", Unit: "00127", At: at, Procedure: "p", Channel: hoso.ChannelDirect, Due: due},
		{Type: hoso.EventTransferred, Dossier: "L1", Unit: "00127", ToUnit: "004", At: due.Add(time.Hour)},
		{Type: hoso.EventOverdue, Dossier: "L1", Unit: "004", At: due},
	}
	for _, e := range steps {
		if err := d.Apply(e); err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
	}
	if !d.OverdueMarked || !d.LastAt.Equal(due.Add(time.Hour)) {
		t.Fatalf("after the marker: marked %v, last_at %v", d.OverdueMarked, d.LastAt)
	}
	// A resolution dated before the transfer is still out of order.
	if err := d.Apply(&hoso.Event{Type: hoso.EventResolved, Dossier: "L1", Unit: "004", At: due}); hoso.ErrorCode(err) != hoso.EINVALID {
		t.Fatalf("resolved before the last desk event: %v", err)
	}

	d = &hoso.Dossier{}
	for _, e := range []*hoso.Event{steps[0], {Type: hoso.EventOverdue, Dossier: "L1", Unit: "00127", At: due}} {
		if err := d.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Apply(&hoso.Event{Type: hoso.EventResolved, Dossier: "L1", Unit: "00127", At: due.Add(-time.Hour)}); err != nil {
		t.Fatalf("resolution before the due posted after the marker: %v", err)
	}
	if d.Result != hoso.ClassOnTime && d.Result != hoso.ClassEarly {
		t.Errorf("resolved before the due: %s", d.Result)
	}
}
