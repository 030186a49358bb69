package projections

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
)

type scanner interface{ Scan(dest ...any) error }

func scanDossier(s scanner) (*hoso.Dossier, error) {
	var (
		d                                  hoso.Dossier
		state, channel, outcome, result    string
		received, due, last, lastSeq       int64
		promised, paused, resolved, closed sql.NullInt64
	)
	if err := s.Scan(&d.Code, &state, &d.Procedure, &channel, &d.ReceivingUnit, &d.Owner, &received, &due,
		&promised, &d.OverdueMarked, &paused, &resolved, &outcome, &result, &closed, &d.Version, &last, &lastSeq); err != nil {
		return nil, err
	}
	d.State, d.Channel, d.Outcome, d.Result = hoso.State(state), hoso.Channel(channel), hoso.Outcome(outcome), hoso.Classification(result)
	d.ReceivedAt, d.Due, d.LastAt = fromNanos(received), fromNanos(due), fromNanos(last)
	d.PromisedDue, d.PausedAt, d.ResolvedAt, d.ClosedAt = nullTime(promised), nullTime(paused), nullTime(resolved), nullTime(closed)
	d.LastSeq = uint64(lastSeq)
	return &d, nil
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// Dossier returns the projected state of one dossier, or ENOTFOUND.
func (db *DB) Dossier(ctx context.Context, code string) (*hoso.Dossier, error) {
	r, done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	d, err := scanDossier(r.QueryRowContext(ctx, `SELECT `+dossierColumns+` FROM dossiers WHERE code = ?`, code))
	if err != nil {
		return nil, wrapNotFound(err, "dossier %q not found", code)
	}
	return d, nil
}

// States a listing can filter on: the dossier states, and three deadline
// states of processing dossiers at the listing's now.
const (
	ListOverdue    = "overdue"     // processing, due before now
	ListDueSoon    = "due_soon"    // processing, due in [now, dueSoonUntil)
	ListInDeadline = "in_deadline" // processing, due at or after now
)

// Listing limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListQuery selects dossiers for a listing.
type ListQuery struct {
	// Unit is the owner unit's code; "" lists every unit. Units, when
	// set, lists the dossiers owned by any of those codes (a subtree, see
	// DB.SeenUnits); Unit and Units are exclusive.
	Unit  string
	Units []string
	// State is processing, awaiting_supplement, resolved, returned,
	// withdrawn, overdue, due_soon or in_deadline; "" lists all.
	State string
	// DueBefore, when not zero, keeps dossiers due before it.
	DueBefore time.Time
	// Cursor is the next value of the previous page.
	Cursor string
	// Limit is the page size: DefaultListLimit when 0, at most MaxListLimit.
	Limit int
}

// cursor is the position after the last dossier of a page, in the
// listing's order (due, code).
type cursor struct {
	Due  int64  `json:"d"`
	Code string `json:"c"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Code == "" {
		return cursor{}, hoso.FieldErrorf("cursor", "not a cursor returned by this listing")
	}
	return c, nil
}

// ListDossiers returns a page of dossiers in order of due, then code, and
// the cursor of the next page ("" after the last). now and dueSoonUntil
// define the deadline states overdue, due_soon and in_deadline.
func (db *DB) ListDossiers(ctx context.Context, q ListQuery, now, dueSoonUntil time.Time) ([]*hoso.Dossier, string, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return nil, "", hoso.FieldErrorf("limit", "must be between 1 and %d, got %d", MaxListLimit, q.Limit)
	}
	var where []string
	var args []any
	switch {
	case q.Unit != "" && q.Units != nil:
		return nil, "", hoso.FieldErrorf("unit", "give either one unit or a list of units")
	case q.Unit != "":
		where, args = append(where, "owner = ?"), append(args, q.Unit)
	case q.Units != nil:
		list, _ := json.Marshal(q.Units) // cannot fail: strings only
		where, args = append(where, "owner IN (SELECT value FROM json_each(?))"), append(args, string(list))
	}
	switch q.State {
	case "":
	case string(hoso.StateProcessing), string(hoso.StateAwaitingSupplement), string(hoso.StateResolved),
		string(hoso.StateReturned), string(hoso.StateWithdrawn):
		where, args = append(where, "state = ?"), append(args, q.State)
	case ListOverdue:
		where, args = append(where, "state = 'processing' AND due < ?"), append(args, now.UnixNano())
	case ListDueSoon:
		where, args = append(where, "state = 'processing' AND due >= ? AND due < ?"), append(args, now.UnixNano(), dueSoonUntil.UnixNano())
	case ListInDeadline:
		where, args = append(where, "state = 'processing' AND due >= ?"), append(args, now.UnixNano())
	default:
		return nil, "", hoso.FieldErrorf("state", "must be one of processing, awaiting_supplement, resolved, returned, withdrawn, overdue, due_soon, in_deadline, got %q", q.State)
	}
	if !q.DueBefore.IsZero() {
		where, args = append(where, "due < ?"), append(args, q.DueBefore.UnixNano())
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		where, args = append(where, "(due, code) > (?, ?)"), append(args, c.Due, c.Code)
	}
	query := `SELECT ` + dossierColumns + ` FROM dossiers`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY due, code LIMIT ?"
	args = append(args, limit+1)

	r, done, err := db.reader()
	if err != nil {
		return nil, "", err
	}
	defer done()
	rows, err := r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list dossiers: %w", err)
	}
	defer rows.Close()
	var items []*hoso.Dossier
	for rows.Next() {
		d, err := scanDossier(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list dossiers: %w", err)
		}
		items = append(items, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list dossiers: %w", err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		next = encodeCursor(cursor{Due: last.Due.UnixNano(), Code: last.Code})
	}
	return items, next, nil
}

// BacklogRow counts a unit's open dossiers by deadline state at an instant.
// The four states partition the open dossiers: Paused (awaiting a
// supplement), Overdue (processing, due before now), DueSoon (processing,
// due in [now, dueSoonUntil)) and InDeadline (processing, due later).
type BacklogRow struct {
	Unit       string `json:"unit"`
	InDeadline int64  `json:"in_deadline"`
	DueSoon    int64  `json:"due_soon"`
	Overdue    int64  `json:"overdue"`
	Paused     int64  `json:"paused"`
}

// Open is the number of open dossiers the row counts.
func (b BacklogRow) Open() int64 { return b.InDeadline + b.DueSoon + b.Overdue + b.Paused }

const backlogSelect = `SELECT owner,
	coalesce(sum(state = 'processing' AND due >= ?2), 0),
	coalesce(sum(state = 'processing' AND due >= ?1 AND due < ?2), 0),
	coalesce(sum(state = 'processing' AND due < ?1), 0),
	coalesce(sum(state = 'awaiting_supplement'), 0)
	FROM dossiers INDEXED BY dossiers_open
	WHERE state IN ('processing', 'awaiting_supplement')`

// Backlog returns, for every unit that owns open dossiers, their count by
// deadline state at now, in order of unit code. It reads the index of open
// dossiers only, so it is cheap enough for every metrics scrape.
func (db *DB) Backlog(ctx context.Context, now, dueSoonUntil time.Time) ([]BacklogRow, error) {
	r, done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := r.QueryContext(ctx, backlogSelect+` GROUP BY owner ORDER BY owner`, now.UnixNano(), dueSoonUntil.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	return scanBacklog(rows)
}

// UnitBacklog returns the backlog of each of codes, in their order, with a
// zero row for a code that owns no open dossier.
func (db *DB) UnitBacklog(ctx context.Context, codes []string, now, dueSoonUntil time.Time) ([]BacklogRow, error) {
	r, done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	list, _ := json.Marshal(codes) // cannot fail: strings only
	rows, err := r.QueryContext(ctx, backlogSelect+` AND owner IN (SELECT value FROM json_each(?3)) GROUP BY owner`,
		now.UnixNano(), dueSoonUntil.UnixNano(), string(list))
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	found, err := scanBacklog(rows)
	if err != nil {
		return nil, err
	}
	byUnit := make(map[string]BacklogRow, len(found))
	for _, b := range found {
		byUnit[b.Unit] = b
	}
	out := make([]BacklogRow, len(codes))
	for i, code := range codes {
		out[i] = byUnit[code]
		out[i].Unit = code
	}
	return out, nil
}

func scanBacklog(rows *sql.Rows) ([]BacklogRow, error) {
	defer rows.Close()
	var out []BacklogRow
	for rows.Next() {
		var b BacklogRow
		if err := rows.Scan(&b.Unit, &b.InDeadline, &b.DueSoon, &b.Overdue, &b.Paused); err != nil {
			return nil, fmt.Errorf("backlog: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	return out, nil
}
