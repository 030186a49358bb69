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
	// Table is the report's data, to read or to attest with a checkpoint.
	Table() *Report
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

// Report is the answer of docs/design.md §2 "Reports": a row per unit of
// a level (or per procedure) and their total, as of a ledger position.
type Report struct {
	Unit    string `json:"unit"`
	Name    string `json:"name"`
	Level   Level  `json:"level"`
	By      string `json:"by"`
	From    string `json:"from"`
	To      string `json:"to"`
	AsOfSeq uint64 `json:"as_of_seq"`
	// Checkpoint is the oldest signed checkpoint whose tree covers
	// AsOfSeq: every event the report counts is in that signed tree. Nil
	// until a checkpoint covers it (or without tamper evidence).
	Checkpoint *Checkpoint `json:"checkpoint"`
	Rows       []ReportRow `json:"rows"`
	Total      ReportRow   `json:"total"`
	// Levels splits Total by authority level (docs/design.md §2 "Reports"):
	// one entry per level of the scope, province first, each with Level set.
	Levels []ReportRow `json:"levels"`
}

// ReportRow is one unit (or procedure) of a report. For every row and the
// total: CarriedOver + Received + TransferredIn = Resolved + Withdrawn +
// TransferredOut + Pending.
type ReportRow struct {
	Unit      string `json:"unit,omitempty"`
	Procedure string `json:"procedure,omitempty"`
	Name      string `json:"name"`
	// Level is the level of a unit's row and of a Levels entry.
	Level Level `json:"level,omitempty"`
	// Own marks the row of a unit above the report's level: the dossiers
	// its own desk holds, apart from the units below it.
	Own bool `json:"own,omitempty"`

	CarriedOver       int64 `json:"carried_over"`
	Received          int64 `json:"received"`
	ReceivedOnline    int64 `json:"received_online"`
	ReceivedDirect    int64 `json:"received_direct"`
	ReceivedPostal    int64 `json:"received_postal"`
	TransferredIn     int64 `json:"transferred_in"`
	TransferredOut    int64 `json:"transferred_out"`
	Resolved          int64 `json:"resolved"`
	ResolvedEarly     int64 `json:"resolved_early"`
	ResolvedOnTime    int64 `json:"resolved_on_time"`
	ResolvedLate      int64 `json:"resolved_late"`
	Withdrawn         int64 `json:"withdrawn"`
	Pending           int64 `json:"pending"`
	PendingInDeadline int64 `json:"pending_in_deadline"`
	PendingOverdue    int64 `json:"pending_overdue"`
	PendingPaused     int64 `json:"pending_paused"`
	// Unassigned is how many of CarriedOver + Received + TransferredIn the
	// row holds only because their unit no longer exists on the report's
	// last day and the 2025 mapping does not say which unit took them over.
	Unassigned     int64    `json:"unassigned"`
	OnTimeRate     *float64 `json:"on_time_rate"`
	ResolutionRate *float64 `json:"resolution_rate"`
}

// Balanced reports whether the row satisfies the report's invariant.
func (r *ReportRow) Balanced() bool {
	return r.CarriedOver+r.Received+r.TransferredIn == r.Resolved+r.Withdrawn+r.TransferredOut+r.Pending
}

// Rates recomputes on_time_rate and resolution_rate from the row's counts
// (never averaged from other rows): nil where the denominator is 0.
func (r *ReportRow) Rates() {
	r.OnTimeRate, r.ResolutionRate = nil, nil
	if r.Resolved > 0 {
		v := float64(r.ResolvedEarly+r.ResolvedOnTime) / float64(r.Resolved)
		r.OnTimeRate = &v
	}
	if r.Resolved+r.Pending > 0 {
		v := float64(r.Resolved) / float64(r.Resolved+r.Pending)
		r.ResolutionRate = &v
	}
}

// Add adds o's counts to the row; call Rates after the last.
func (r *ReportRow) Add(o *ReportRow) {
	r.CarriedOver += o.CarriedOver
	r.Received += o.Received
	r.ReceivedOnline += o.ReceivedOnline
	r.ReceivedDirect += o.ReceivedDirect
	r.ReceivedPostal += o.ReceivedPostal
	r.TransferredIn += o.TransferredIn
	r.TransferredOut += o.TransferredOut
	r.Resolved += o.Resolved
	r.ResolvedEarly += o.ResolvedEarly
	r.ResolvedOnTime += o.ResolvedOnTime
	r.ResolvedLate += o.ResolvedLate
	r.Withdrawn += o.Withdrawn
	r.Pending += o.Pending
	r.PendingInDeadline += o.PendingInDeadline
	r.PendingOverdue += o.PendingOverdue
	r.PendingPaused += o.PendingPaused
	r.Unassigned += o.Unassigned
}
