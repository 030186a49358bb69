// Package hoso is the domain of an event-sourced, tamper-evident audit ledger
// of administrative-procedure dossiers ("hồ sơ") for Vietnam's one-stop shops.
//
// It owns the event types and their validation, the dossier state machine and
// its fold, the working calendar that turns processing days into a due moment,
// the effective-dated registry of administrative units, and the error codes.
// It imports no technology: the adapters in eventstore (NATS JetStream),
// projections (SQLite) and handlers (HTTP) meet through the types and
// interfaces declared here.
package hoso

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// AppendResult is the answer to one appended event.
type AppendResult struct {
	Dossier   string `json:"dossier"`
	Version   int    `json:"version"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// BatchResult is the answer to one event of a batch: a result or an error.
type BatchResult struct {
	Result AppendResult
	Err    error
}

// EventService validates events against the ledger and appends them.
type EventService interface {
	// Append validates and appends one event. A re-send of an event already
	// in the ledger (same id, same content) answers the original result with
	// Duplicate set; an id reused for different content is an error.
	Append(ctx context.Context, e *Event) (AppendResult, error)

	// AppendBatch appends events in order, answering one result per event.
	// A rejected event changes nothing; later events are still tried.
	AppendBatch(ctx context.Context, events []*Event) []BatchResult
}

// DossierView is one dossier with its history, as the API serves it.
type DossierView struct {
	*Dossier
	Classification Classification `json:"classification,omitempty"`
	Events         []*Event       `json:"events"`
}

// DossierService reads dossiers.
type DossierService interface {
	// FindDossier returns the dossier with its events, or ENOTFOUND.
	FindDossier(ctx context.Context, code string) (*DossierView, error)
}

// DossierHistory loads one dossier's events from the ledger, in order,
// each with its Seq; none when the dossier does not exist. The event store
// implements it; the read model serves histories through it.
type DossierHistory interface {
	LoadDossier(ctx context.Context, code string) ([]*Event, error)
}

// LedgerEntry is one message of the ledger: its position in the stream, when
// the stream stored it, and the exact stored bytes of the event.
type LedgerEntry struct {
	Seq  uint64
	Time time.Time
	Data []byte
}

// Dossier returns the code of the stored event's dossier without decoding
// the rest: stored events put "dossier" among their first keys, and a
// code has nothing JSON escapes, so the first `"dossier":"` is the key (a
// string value holding those bytes would have its quotes escaped). Other
// encodings go through Event (FuzzLedgerEntryDossier).
func (m LedgerEntry) Dossier() (string, error) {
	const key = `"dossier":"`
	if i := bytes.Index(m.Data, []byte(key)); i >= 0 {
		rest := m.Data[i+len(key):]
		// A second "dossier" key would be the one a decoder keeps.
		// Only a code of the dossier alphabet is taken as it stands: any
		// other byte (an escape, invalid UTF-8, a control character) is
		// what the decoder may rewrite, so the decoder answers instead.
		if j := bytes.IndexByte(rest, '"'); j > 0 && isDossierCodeBytes(rest[:j]) &&
			!bytes.Contains(rest[j:], []byte(`"dossier"`)) {
			return string(rest[:j]), nil
		}
	}
	e, err := m.Event()
	if err != nil {
		return "", err
	}
	return e.Dossier, nil
}

// isDossierCodeBytes reports whether b holds only bytes a dossier code may
// have (DESIGN §2: letters, digits, '.', '_', '-').
func isDossierCodeBytes(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Event decodes the stored event and sets its Seq.
func (m LedgerEntry) Event() (*Event, error) {
	e, err := UnmarshalStored(m.Data)
	if err != nil {
		return nil, fmt.Errorf("seq %d: %w", m.Seq, err)
	}
	e.Seq = m.Seq
	return e, nil
}

// Ledger reads the ledger in stream order. The event store implements it;
// the read model and the verifier consume it.
type Ledger interface {
	// LastSeq returns the stream's last sequence.
	LastSeq(ctx context.Context) (uint64, error)
	// Read calls fn for every entry from seq from up to the last sequence at
	// the time of the call, in order; with follow it goes on with new entries
	// until ctx is done.
	Read(ctx context.Context, from uint64, follow bool, fn func(LedgerEntry) error) error
}

// Clock returns the current time; tests and simulations replace it.
type Clock func() time.Time
