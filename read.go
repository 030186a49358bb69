package hoso

import (
	"context"
	"io"
	"time"
)

// ReportQuery selects a report (docs/design.md §2 "Reports").
type ReportQuery struct {
	// Unit is the scope: the report covers its subtree; "" is the whole
	// country.
	Unit string
	// Level is the administrative level of the rows; "" is the unit's own
	// level (province for the whole country).
	Level Level
	// From and To are the period's first and last local dates, YYYY-MM-DD.
	From, To string
	// By is "unit" ("" too): one row per unit of Level, or "procedure": one
	// row per procedure, over the dossiers of those units.
	By string
}

// ReportTable is a computed report: it encodes as the JSON answer and
// renders as the same table in CSV and as the official form in XLSX.
type ReportTable interface {
	CSV(w io.Writer) error
	XLSX(w io.Writer) error
	// Position is the ledger sequence the read model had applied.
	Position() uint64
	// Attest records the signed checkpoint the report is consistent with
	// (one whose tree covers Position).
	Attest(Checkpoint)
}

// ReportService computes reports from the read model.
type ReportService interface {
	Report(ctx context.Context, q ReportQuery) (ReportTable, error)
}

// DossierFilter selects a page of a dossier listing.
type DossierFilter struct {
	// Unit lists the dossiers owned by the unit or any unit of its subtree
	// as the registry stands now; "" lists every unit.
	Unit string
	// State is a dossier state, or a deadline state of processing
	// dossiers now: overdue, due_soon, in_deadline; "" lists all.
	State string
	// DueBefore, when not zero, keeps dossiers due before it.
	DueBefore time.Time
	// Cursor is the next_cursor of the previous page.
	Cursor string
	// Limit is the page size; 0 is the default.
	Limit int
}

// DossierSummary is one dossier of a listing, without its events.
type DossierSummary struct {
	*Dossier
	Classification Classification `json:"classification,omitempty"`
}

// DossierPage is a page of a listing. NextCursor is "" after the last page.
type DossierPage struct {
	Dossiers   []DossierSummary `json:"dossiers"`
	NextCursor string           `json:"next_cursor,omitempty"`
	AsOfSeq    uint64           `json:"as_of_seq"`
}

// DossierLister lists dossiers from the read model.
type DossierLister interface {
	ListDossiers(ctx context.Context, f DossierFilter) (*DossierPage, error)
}

// Backlog counts open dossiers by deadline state at an instant.
type Backlog struct {
	Open       int64 `json:"open"`
	InDeadline int64 `json:"in_deadline"`
	DueSoon    int64 `json:"due_soon"`
	Overdue    int64 `json:"overdue"`
	Paused     int64 `json:"paused"`
}

// UnitBacklog is a unit with the backlog of its whole subtree.
type UnitBacklog struct {
	Unit
	Backlog Backlog `json:"backlog"`
}

// UnitView is a unit as it stands now with its children, each with its
// current backlog.
type UnitView struct {
	UnitBacklog
	Children []UnitBacklog `json:"children"`
	AsOfSeq  uint64        `json:"as_of_seq"`
}

// UnitService reads units with their backlog.
type UnitService interface {
	// FindUnit returns the unit with code as it stands now, or ENOTFOUND.
	FindUnit(ctx context.Context, code string) (*UnitView, error)
}
