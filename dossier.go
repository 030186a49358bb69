package hoso

import (
	"fmt"
	"time"
)

// State is where a dossier stands in the state machine of docs/design.md §2.
type State string

// Dossier states.
const (
	StateNone               State = ""
	StateProcessing         State = "processing"
	StateAwaitingSupplement State = "awaiting_supplement"
	StateResolved           State = "resolved"
	StateReturned           State = "returned"
	StateWithdrawn          State = "withdrawn"
)

// Open reports whether a dossier in this state still counts as pending.
func (s State) Open() bool { return s == StateProcessing || s == StateAwaitingSupplement }

// Classification of a resolved dossier against its statutory due, at day
// granularity in local dates (Circular 01/2018 practice).
type Classification string

// Classifications. Early, on time and late apply to resolved dossiers;
// in deadline, overdue and paused to open ones.
const (
	ClassEarly      Classification = "early"
	ClassOnTime     Classification = "on_time"
	ClassLate       Classification = "late"
	ClassInDeadline Classification = "in_deadline"
	ClassOverdue    Classification = "overdue"
	ClassPaused     Classification = "paused"
)

// LocalDate returns the civil date of t in Vietnam as days since 1970-01-01.
func LocalDate(t time.Time) int64 {
	_, off := t.In(VietnamZone).Zone()
	return (t.Unix() + int64(off)) / 86400
}

// ClassifyResolution classifies a dossier resolved at resolved against due:
// early if its local date is before due's, on time if equal, late if after.
func ClassifyResolution(resolved, due time.Time) Classification {
	r, d := LocalDate(resolved), LocalDate(due)
	switch {
	case r < d:
		return ClassEarly
	case r == d:
		return ClassOnTime
	}
	return ClassLate
}

// Dossier is the state of one dossier, folded from its events.
type Dossier struct {
	Code          string         `json:"code"`
	State         State          `json:"state"`
	Procedure     string         `json:"procedure"`
	Channel       Channel        `json:"channel"`
	ReceivingUnit string         `json:"receiving_unit"`
	Owner         string         `json:"owner"`
	ReceivedAt    time.Time      `json:"received_at"`
	Due           time.Time      `json:"due"`
	PromisedDue   *time.Time     `json:"promised_due,omitempty"`
	OverdueMarked bool           `json:"overdue_marked"` // an overdue event exists for the current due
	PausedAt      *time.Time     `json:"paused_at,omitempty"`
	ResolvedAt    *time.Time     `json:"resolved_at,omitempty"`
	Outcome       Outcome        `json:"outcome,omitempty"`
	Result        Classification `json:"result,omitempty"` // early, on_time or late once resolved
	ClosedAt      *time.Time     `json:"closed_at,omitempty"`
	Version       int            `json:"version"`
	LastAt        time.Time      `json:"last_at"` // of the last desk event (overdue events do not count)
	LastSeq       uint64         `json:"last_seq"`
}

// Classify returns the dossier's classification at instant now: its result
// once resolved, otherwise paused, in deadline or overdue.
func (d *Dossier) Classify(now time.Time) Classification {
	switch {
	case d.State == StateResolved || d.State == StateReturned:
		return d.Result
	case d.State == StateAwaitingSupplement:
		return ClassPaused
	case !d.State.Open():
		return ""
	case d.Due.Before(now):
		return ClassOverdue
	}
	return ClassInDeadline
}

// Check reports whether e may be applied to the dossier in its current state,
// without changing it. The error names the current state when the transition
// is not allowed.
func (d *Dossier) Check(e *Event) error {
	c := *d
	return c.Apply(e)
}

// Apply validates e against the dossier's state and, if it is allowed, folds
// it in. On error the dossier is unchanged.
func (d *Dossier) Apply(e *Event) error {
	if d.State == StateNone && e.Type != EventReceived {
		return Errorf(ENOTFOUND, "dossier %q does not exist: its first event must be received, got %s", e.Dossier, e.Type)
	}
	if e.ExpectedVersion != nil && *e.ExpectedVersion != d.Version {
		return &Error{Code: ECONFLICT, Field: "expected_version", Message: fmt.Sprintf(
			"expected_version: dossier %q has %d events, the event expected %d", e.Dossier, d.Version, *e.ExpectedVersion)}
	}
	// An overdue event is dated at the due by definition (checked below) and
	// is exempt from the order of times; it does not move LastAt either, so
	// a desk event that happened before the due but reached the ledger after
	// the deadline watcher had marked the dossier is still accepted.
	if d.State != StateNone && e.Type != EventOverdue && e.At.Before(d.LastAt) {
		return FieldErrorf("at", "%s is before the dossier's previous event at %s",
			e.At.UTC().Format(time.RFC3339), d.LastAt.UTC().Format(time.RFC3339))
	}
	refuse := func() error {
		state := d.State
		if state == StateNone {
			state = "none"
		}
		return FieldErrorf("type", "%s is not allowed: dossier %q is %s", e.Type, d.Code, state)
	}
	next := *d
	switch e.Type {
	case EventReceived:
		if d.State != StateNone {
			return refuse()
		}
		if e.Due.IsZero() {
			return FieldErrorf("due", "missing: compute it from days before applying")
		}
		next = Dossier{
			Code: e.Dossier, State: StateProcessing, Procedure: e.Procedure, Channel: e.Channel,
			ReceivingUnit: e.Unit, Owner: e.Unit, ReceivedAt: e.At, Due: e.Due,
		}
	case EventTransferred:
		if d.State != StateProcessing {
			return refuse()
		}
		if e.ToUnit == d.Owner {
			return FieldErrorf("to_unit", "%q already owns dossier %q", e.ToUnit, d.Code)
		}
		next.Owner = e.ToUnit
	case EventSupplementRequested:
		if d.State != StateProcessing {
			return refuse()
		}
		next.State = StateAwaitingSupplement
		next.PausedAt = ptr(e.At)
	case EventSupplementReceived:
		if d.State != StateAwaitingSupplement {
			return refuse()
		}
		next.State = StateProcessing
		next.PausedAt = nil
		next.Due = e.Due
		next.OverdueMarked = false
	case EventExtended:
		if d.State != StateProcessing {
			return refuse()
		}
		next.PromisedDue = ptr(e.Due)
	case EventOverdue:
		if d.State != StateProcessing {
			return refuse()
		}
		if !e.At.Equal(d.Due) {
			return FieldErrorf("at", "an overdue event must be dated at the dossier's due %s, got %s",
				d.Due.UTC().Format(time.RFC3339), e.At.UTC().Format(time.RFC3339))
		}
		if d.OverdueMarked {
			return Errorf(ECONFLICT, "dossier %q is already marked overdue for its due %s", d.Code, d.Due.UTC().Format(time.RFC3339))
		}
		next.OverdueMarked = true
	case EventResolved:
		if !d.State.Open() {
			return refuse()
		}
		next.State = StateResolved
		next.ResolvedAt = ptr(e.At)
		next.Outcome = e.Outcome
		next.Result = ClassifyResolution(e.At, d.Due)
		next.PausedAt = nil
	case EventReturned:
		if d.State != StateResolved {
			return refuse()
		}
		next.State = StateReturned
		next.ClosedAt = ptr(e.At)
	case EventWithdrawn:
		if !d.State.Open() {
			return refuse()
		}
		next.State = StateWithdrawn
		next.ClosedAt = ptr(e.At)
		next.PausedAt = nil
	default:
		return FieldErrorf("type", "unknown event type %q", e.Type)
	}
	next.Version = d.Version + 1
	if e.Type != EventOverdue {
		next.LastAt = e.At
	}
	if e.Seq != 0 {
		next.LastSeq = e.Seq
	}
	*d = next
	return nil
}

// Fold builds a dossier from its events in order.
func Fold(events []*Event) (*Dossier, error) {
	d := &Dossier{}
	for _, e := range events {
		if err := d.Apply(e); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func ptr[T any](v T) *T { return &v }
