package hoso

import "time"

// OverdueEventID is the id of the overdue event of dossier code for its due
// moment due. It depends on nothing else, so every deadline watcher, in any
// process and after any restart, proposes the same id for the same fact and
// the ledger's deduplication keeps exactly one.
func OverdueEventID(code string, due time.Time) string {
	return "overdue-" + code + "-" + due.UTC().Format("20060102T150405.000000000Z")
}

// NewOverdueEvent returns the overdue event of a processing dossier owned by
// unit whose due moment due has passed: dated at the due, with the id of
// OverdueEventID.
func NewOverdueEvent(code, unit string, due time.Time) *Event {
	return &Event{ID: OverdueEventID(code, due), Type: EventOverdue, Dossier: code, Unit: unit, At: due.UTC()}
}
