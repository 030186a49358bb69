package hoso

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// EventType names what happened to a dossier.
type EventType string

// The event types of the dossier state machine (docs/design.md §2).
const (
	EventReceived            EventType = "received"
	EventTransferred         EventType = "transferred"
	EventSupplementRequested EventType = "supplement_requested"
	EventSupplementReceived  EventType = "supplement_received"
	EventExtended            EventType = "extended"
	EventOverdue             EventType = "overdue"
	EventResolved            EventType = "resolved"
	EventReturned            EventType = "returned"
	EventWithdrawn           EventType = "withdrawn"
)

// EventTypes lists every event type, in the order of the state machine.
var EventTypes = []EventType{
	EventReceived, EventTransferred, EventSupplementRequested, EventSupplementReceived,
	EventExtended, EventOverdue, EventResolved, EventReturned, EventWithdrawn,
}

func (t EventType) valid() bool {
	for _, v := range EventTypes {
		if t == v {
			return true
		}
	}
	return false
}

// Channel is how a dossier reached the desk.
type Channel string

// The reception channels.
const (
	ChannelDirect Channel = "direct"
	ChannelOnline Channel = "online"
	ChannelPostal Channel = "postal"
)

// Outcome is how a resolved dossier ended.
type Outcome string

// The outcomes of a resolution.
const (
	OutcomeApproved Outcome = "approved"
	OutcomeRejected Outcome = "rejected"
)

// Limits of the event contract.
const (
	MaxIDLength        = 128
	MaxProcedureLength = 64
	MaxReasonLength    = 1000
	MaxDays            = 365
	// FutureTolerance is how far ahead of the server's clock an event's at may be.
	FutureTolerance = 5 * time.Minute
)

// ValidDossierCode reports whether code is an acceptable dossier code:
// ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, checked by hand since every event
// and every dossier request asks.
func ValidDossierCode(code string) bool {
	if len(code) == 0 || len(code) > 64 {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		alnum := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Event is one fact about one dossier. Events are the only write model: the
// ledger stores them and every read model is derived from them.
//
// The JSON form of a stored event (MarshalStored) is canonical: fixed field
// order, UTC times, computed due, plus version and recorded_at. Its bytes are
// what the ledger keeps and what the Merkle tree hashes. Seq is the ledger
// position; it is assigned by the stream and is not part of the stored bytes.
type Event struct {
	ID         string
	Type       EventType
	Dossier    string
	Unit       string
	At         time.Time
	Procedure  string
	Channel    Channel
	Due        time.Time // zero when absent
	Days       float64   // 0 when absent
	ToUnit     string
	Outcome    Outcome
	Reason     string
	Version    int
	RecordedAt time.Time
	// By is the principal that submitted the event, set by the ledger
	// from the sender's credentials, never by the sender; SystemPrincipal
	// for the ledger's own events. Empty in events stored before the
	// ledger recorded submitters.
	By string

	// ExpectedVersion is the sender's optimistic-concurrency precondition;
	// nil when not given. It is not stored.
	ExpectedVersion *int

	// Seq is the ledger position, filled in when the event is read back.
	Seq uint64
}

// wireEvent is the accepted input. Times and numbers are decoded by hand so
// that each error names its field and the bad value.
type wireEvent struct {
	ID              *string          `json:"id"`
	Type            *string          `json:"type"`
	Dossier         *string          `json:"dossier"`
	Unit            *string          `json:"unit"`
	At              *string          `json:"at"`
	Procedure       *string          `json:"procedure"`
	Channel         *string          `json:"channel"`
	Due             *string          `json:"due"`
	Days            *json.RawMessage `json:"days"`
	ToUnit          *string          `json:"to_unit"`
	Outcome         *string          `json:"outcome"`
	Reason          *string          `json:"reason"`
	ExpectedVersion *json.RawMessage `json:"expected_version"`

	// plain, plainDays and plainExpectedVersion hold what decodePlain
	// read, so that the pointers above need no allocations of their own.
	plain                           [len(wireFields)]string
	plainDays, plainExpectedVersion json.RawMessage
}

// storedEvent fixes the canonical field order of a stored event.
type storedEvent struct {
	ID         string    `json:"id"`
	Type       EventType `json:"type"`
	Dossier    string    `json:"dossier"`
	Unit       string    `json:"unit"`
	At         time.Time `json:"at"`
	Procedure  string    `json:"procedure,omitempty"`
	Channel    Channel   `json:"channel,omitempty"`
	Due        string    `json:"due,omitempty"`
	Days       float64   `json:"days,omitempty"`
	ToUnit     string    `json:"to_unit,omitempty"`
	Outcome    Outcome   `json:"outcome,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Version    int       `json:"version"`
	RecordedAt time.Time `json:"recorded_at"`
	By         string    `json:"by,omitempty"`
}

// DecodeEvent parses one event as sent by a desk system. Unknown fields,
// wrong types, malformed times and trailing data are rejected with an
// EINVALID error naming the field. It checks the syntax of each field but not
// the event against a dossier's state; see Validate and Dossier.Apply.
func DecodeEvent(data []byte) (*Event, error) {
	var w wireEvent
	if w.decodePlain(data) {
		return w.event()
	}
	return decodeEventJSON(data)
}

// decodeEventJSON is DecodeEvent by encoding/json, for any input.
func decodeEventJSON(data []byte) (*Event, error) {
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(EINVALID, "malformed JSON: unexpected data after the event object")
	}
	if bytes.TrimSpace(data)[0] != '{' {
		return nil, Errorf(EINVALID, "malformed JSON: an event must be a JSON object")
	}
	return w.event()
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return Errorf(EINVALID, "malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Errorf(EINVALID, "malformed JSON: an event must be a JSON object, got %s", typ.Value)
		}
		return FieldErrorf(typ.Field, "must be a %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(EINVALID, "malformed JSON: unexpected end of input")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		name = strings.Trim(name, `"`)
		if name == "by" {
			return FieldErrorf(name, "is set by the ledger from the sender's credentials and may not be sent")
		}
		return FieldErrorf(name, "unknown field")
	}
	return Errorf(EINVALID, "malformed JSON: %s", msg)
}

func jsonKind(kind string) string {
	switch kind {
	case "ptr", "string":
		return "string"
	case "slice":
		return "number"
	}
	return kind
}

func (w *wireEvent) event() (*Event, error) {
	e := &Event{}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	e.ID = str(w.ID)
	e.Type = EventType(str(w.Type))
	e.Dossier = str(w.Dossier)
	e.Unit = str(w.Unit)
	e.Procedure = str(w.Procedure)
	e.Channel = Channel(str(w.Channel))
	e.ToUnit = str(w.ToUnit)
	e.Outcome = Outcome(str(w.Outcome))
	e.Reason = str(w.Reason)

	if w.ID != nil && (e.ID == "" || utf8.RuneCountInString(e.ID) > MaxIDLength || !printable(e.ID)) {
		return nil, FieldErrorf("id", "must be 1 to %d printable characters, got %q", MaxIDLength, e.ID)
	}
	if w.Type == nil {
		return nil, FieldErrorf("type", "required")
	}
	if !e.Type.valid() {
		return nil, FieldErrorf("type", "unknown event type %q (want one of %s)", e.Type, typeList())
	}
	if w.Dossier == nil {
		return nil, FieldErrorf("dossier", "required")
	}
	if !ValidDossierCode(e.Dossier) {
		return nil, FieldErrorf("dossier", "%q is not a dossier code (1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)", e.Dossier)
	}
	if w.Unit == nil || e.Unit == "" {
		return nil, FieldErrorf("unit", "required")
	}
	if w.At == nil {
		return nil, FieldErrorf("at", "required")
	}
	at, err := parseTime("at", *w.At)
	if err != nil {
		return nil, err
	}
	e.At = at
	if w.Due != nil {
		if e.Due, err = parseTime("due", *w.Due); err != nil {
			return nil, err
		}
	}
	if w.Days != nil {
		days, err := unmarshalFloat(*w.Days)
		if err != nil {
			return nil, FieldErrorf("days", "must be a number of working days, got %s", *w.Days)
		}
		if days <= 0 || days > MaxDays || math.IsNaN(days) || math.Round(days*100) != days*100 {
			return nil, FieldErrorf("days", "must be a number of working days above 0 and at most %d with at most 2 decimals, got %s", MaxDays, *w.Days)
		}
		e.Days = days
	}
	if w.ExpectedVersion != nil {
		v, err := unmarshalInt(*w.ExpectedVersion)
		if err != nil || v < 0 {
			return nil, FieldErrorf("expected_version", "must be a whole number of events, 0 or more, got %s", *w.ExpectedVersion)
		}
		e.ExpectedVersion = &v
	}
	if err := e.checkFieldsForType(w); err != nil {
		return nil, err
	}
	return e, nil
}

func typeList() string {
	s := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// The years an event's times may fall in.
const (
	minYear = 1900
	maxYear = 2999
)

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, FieldErrorf(field, "must be an RFC 3339 time with offset such as 2024-03-01T09:30:00+07:00, got %q", s)
	}
	// Bounded so that every accepted time has a UTC form that encodes again
	// (year 0000 with a positive offset does not), with room to spare.
	if y := t.UTC().Year(); y < minYear || y > maxYear {
		return time.Time{}, FieldErrorf(field, "must be between the years %d and %d, got %q", minYear, maxYear, s)
	}
	return t, nil
}

// checkFieldsForType enforces which fields each type takes (docs/design.md §2).
func (e *Event) checkFieldsForType(w *wireEvent) error {
	type rule struct {
		name    string
		present bool
		allowed bool
	}
	t := e.Type
	rules := []rule{
		{"procedure", w.Procedure != nil, t == EventReceived},
		{"channel", w.Channel != nil, t == EventReceived},
		{"days", w.Days != nil, t == EventReceived},
		{"due", w.Due != nil, t == EventReceived || t == EventSupplementReceived || t == EventExtended},
		{"to_unit", w.ToUnit != nil, t == EventTransferred},
		{"outcome", w.Outcome != nil, t == EventResolved},
		{"reason", w.Reason != nil, t == EventSupplementRequested || t == EventExtended || t == EventWithdrawn},
	}
	for _, r := range rules {
		if r.present && !r.allowed {
			return FieldErrorf(r.name, "not allowed on a %s event", t)
		}
	}
	switch t {
	case EventReceived:
		if e.Procedure == "" {
			return FieldErrorf("procedure", "required on a received event")
		}
		if utf8.RuneCountInString(e.Procedure) > MaxProcedureLength || !printable(e.Procedure) || strings.ContainsFunc(e.Procedure, unicode.IsSpace) {
			return FieldErrorf("procedure", "must be 1 to %d printable characters without spaces, got %q", MaxProcedureLength, e.Procedure)
		}
		switch e.Channel {
		case ChannelDirect, ChannelOnline, ChannelPostal:
		case "":
			return FieldErrorf("channel", "required on a received event (direct, online or postal)")
		default:
			return FieldErrorf("channel", "must be direct, online or postal, got %q", e.Channel)
		}
		if (w.Due == nil) == (w.Days == nil) {
			return FieldErrorf("due", "a received event needs exactly one of due and days")
		}
	case EventSupplementReceived, EventExtended:
		if w.Due == nil {
			return FieldErrorf("due", "required on a %s event", t)
		}
	case EventTransferred:
		if e.ToUnit == "" {
			return FieldErrorf("to_unit", "required on a transferred event")
		}
	case EventResolved:
		switch e.Outcome {
		case "":
			e.Outcome = OutcomeApproved
		case OutcomeApproved, OutcomeRejected:
		default:
			return FieldErrorf("outcome", "must be approved or rejected, got %q", e.Outcome)
		}
	}
	if utf8.RuneCountInString(e.Reason) > MaxReasonLength {
		return FieldErrorf("reason", "must be at most %d characters, got %d", MaxReasonLength, utf8.RuneCountInString(e.Reason))
	}
	if !e.Due.IsZero() && e.Due.Before(e.At) && t != EventExtended {
		return FieldErrorf("due", "%s is before at %s", e.Due.Format(time.RFC3339), e.At.Format(time.RFC3339))
	}
	return nil
}

// CheckClock rejects an event dated more than FutureTolerance after now.
func (e *Event) CheckClock(now time.Time) error {
	if e.At.After(now.Add(FutureTolerance)) {
		return FieldErrorf("at", "%s is more than %s in the future (server time %s)",
			e.At.Format(time.RFC3339), FutureTolerance, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// MarshalStored returns the canonical stored form of e.
func (e *Event) MarshalStored() ([]byte, error) {
	if b, ok := appendStoredCanonical(make([]byte, 0, 320), e); ok {
		return b, nil
	}
	return e.marshalStoredJSON()
}

// marshalStoredJSON is the stored form through encoding/json: the fallback
// of MarshalStored, and the reference its hand-written encoder must equal.
func (e *Event) marshalStoredJSON() ([]byte, error) {
	s := storedEvent{
		ID: e.ID, Type: e.Type, Dossier: e.Dossier, Unit: e.Unit, At: e.At.UTC(),
		Procedure: e.Procedure, Channel: e.Channel, Days: e.Days, ToUnit: e.ToUnit,
		Outcome: e.Outcome, Reason: e.Reason, Version: e.Version, RecordedAt: e.RecordedAt.UTC(), By: e.By,
	}
	if !e.Due.IsZero() {
		s.Due = e.Due.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(s)
}

// UnmarshalStored parses an event in its stored form, as read from the ledger.
func UnmarshalStored(data []byte) (*Event, error) {
	if e, ok := decodeStoredCanonical(data); ok {
		return e, nil
	}
	return unmarshalStoredJSON(data)
}

// unmarshalStoredJSON is UnmarshalStored by encoding/json, for any input.
func unmarshalStoredJSON(data []byte) (*Event, error) {
	var s storedEvent
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode stored event: %w", err)
	}
	e := &Event{
		ID: s.ID, Type: s.Type, Dossier: s.Dossier, Unit: s.Unit, At: s.At,
		Procedure: s.Procedure, Channel: s.Channel, Days: s.Days, ToUnit: s.ToUnit,
		Outcome: s.Outcome, Reason: s.Reason, Version: s.Version, RecordedAt: s.RecordedAt, By: s.By,
	}
	if s.Due != "" {
		due, err := time.Parse(time.RFC3339Nano, s.Due)
		if err != nil {
			return nil, fmt.Errorf("decode stored event: due: %w", err)
		}
		e.Due = due
	}
	return e, nil
}

// MarshalJSON renders an event as served by the API: the stored form plus seq.
func (e *Event) MarshalJSON() ([]byte, error) {
	b, err := e.MarshalStored()
	if err != nil || e.Seq == 0 {
		return b, err
	}
	return append(fmt.Appendf(nil, `{"seq":%d,`, e.Seq), b[1:]...), nil
}

// DeriveID returns the idempotency key of an event sent without one: a hash
// of its content, so that an identical re-send is recognised as such.
func (e *Event) DeriveID() string {
	c := *e
	c.ID, c.Version, c.RecordedAt, c.Seq, c.ExpectedVersion, c.By = "", 0, time.Time{}, 0, nil, ""
	var buf [320]byte // the usual event fits: no allocation for bytes only hashed
	b, ok := appendStoredCanonical(buf[:0], &c)
	if !ok {
		b, _ = c.MarshalStored() // cannot fail: only strings, numbers and times
	}
	sum := sha256.Sum256(b)
	return "h-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// SameRequest reports whether stored and incoming say the same thing, so that
// a re-send under the same id is a duplicate rather than a reuse of the id
// for different content. Who sent it is not compared: the ledger keeps the
// first submitter. A due computed from days is compared through days,
// since a later calendar change may compute it differently.
func SameRequest(stored, incoming *Event) bool {
	a, b := *stored, *incoming
	for _, x := range []*Event{&a, &b} {
		x.Version, x.RecordedAt, x.Seq, x.ExpectedVersion, x.By = 0, time.Time{}, 0, nil, ""
		x.At = x.At.UTC()
		if x.Days != 0 {
			x.Due = time.Time{}
		}
		x.Due = x.Due.UTC()
	}
	return a == b
}
