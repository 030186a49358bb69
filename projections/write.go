package projections

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
)

// A batch writes tens of thousands of rows. They go in sorted by the
// table's key, so that the B-tree is walked in order, and many rows to a
// statement, since a statement's round trip through database/sql and cgo
// costs more than SQLite's work for one row.

// rowsPerStatement is how many rows one INSERT carries (at most 18
// columns: far below SQLite's limit on parameters).
const rowsPerStatement = 64

// multiInsert writes rows with INSERT … VALUES (…), (…) … ON CONFLICT ….
type multiInsert struct {
	ctx            context.Context
	tx             *sql.Tx
	head, conflict string
	cols           int
	full           *sql.Stmt // rowsPerStatement rows, prepared on first use
	args           []any
}

func newMultiInsert(ctx context.Context, tx *sql.Tx, head string, cols int, conflict string) *multiInsert {
	return &multiInsert{ctx: ctx, tx: tx, head: head, conflict: conflict, cols: cols,
		args: make([]any, 0, cols*rowsPerStatement)}
}

func (m *multiInsert) query(rows int) string {
	tuple := "(" + strings.Repeat("?, ", m.cols-1) + "?)"
	return m.head + " VALUES " + strings.Repeat(tuple+", ", rows-1) + tuple + " " + m.conflict
}

// add queues one row, writing the queue when it is full.
func (m *multiInsert) add(vals ...any) error {
	m.args = append(m.args, vals...)
	if len(m.args) < m.cols*rowsPerStatement {
		return nil
	}
	if m.full == nil {
		st, err := m.tx.PrepareContext(m.ctx, m.query(rowsPerStatement))
		if err != nil {
			return err
		}
		m.full = st
	}
	_, err := m.full.ExecContext(m.ctx, m.args...)
	m.args = m.args[:0]
	return err
}

// flush writes the queued rows and releases the statement.
func (m *multiInsert) flush() error {
	var err error
	if n := len(m.args) / m.cols; n > 0 {
		_, err = m.tx.ExecContext(m.ctx, m.query(n), m.args...)
		m.args = m.args[:0]
	}
	if m.full != nil {
		m.full.Close()
		m.full = nil
	}
	return err
}

const dossierColumns = `code, state, procedure, channel, receiving_unit, owner, received_at, due,
	promised_due, overdue_marked, paused_at, resolved_at, outcome, result, closed_at, version, last_at, last_seq`

// dossierUpsert makes a dossier's row its latest state.
const dossierUpsert = `ON CONFLICT (code) DO UPDATE SET state = excluded.state, procedure = excluded.procedure,
	channel = excluded.channel, receiving_unit = excluded.receiving_unit, owner = excluded.owner,
	received_at = excluded.received_at, due = excluded.due, promised_due = excluded.promised_due,
	overdue_marked = excluded.overdue_marked, paused_at = excluded.paused_at,
	resolved_at = excluded.resolved_at, outcome = excluded.outcome, result = excluded.result,
	closed_at = excluded.closed_at, version = excluded.version, last_at = excluded.last_at,
	last_seq = excluded.last_seq`

func writeDossiers(ctx context.Context, tx *sql.Tx, dirty map[string]*hoso.Dossier) error {
	list := make([]*hoso.Dossier, 0, len(dirty))
	for _, d := range dirty {
		list = append(list, d)
	}
	return insertDossiers(ctx, tx, list, dossierUpsert)
}

// insertDossiers writes the rows of list, sorting it by code; conflict is
// the statement's ON CONFLICT clause ("" where every row is new).
func insertDossiers(ctx context.Context, tx *sql.Tx, list []*hoso.Dossier, conflict string) error {
	slices.SortFunc(list, func(a, b *hoso.Dossier) int { return cmp.Compare(a.Code, b.Code) })
	ins := newMultiInsert(ctx, tx, `INSERT INTO dossiers (`+dossierColumns+`)`, 18, conflict)
	for _, d := range list {
		if err := ins.add(d.Code, string(d.State), d.Procedure, string(d.Channel),
			d.ReceivingUnit, d.Owner, d.ReceivedAt.UnixNano(), d.Due.UnixNano(), nanos(d.PromisedDue),
			d.OverdueMarked, nanos(d.PausedAt), nanos(d.ResolvedAt), string(d.Outcome), string(d.Result),
			nanos(d.ClosedAt), d.Version, d.LastAt.UnixNano(), int64(d.LastSeq)); err != nil {
			ins.flush()
			return fmt.Errorf("write dossiers: %w", err)
		}
	}
	if err := ins.flush(); err != nil {
		return fmt.Errorf("write dossiers: %w", err)
	}
	return nil
}

// textDossiers writes the rows of list, every one new, as SQL text, sorting
// list by code.
func textDossiers(ctx context.Context, tx *sql.Tx, list []*hoso.Dossier) error {
	slices.SortFunc(list, func(a, b *hoso.Dossier) int { return cmp.Compare(a.Code, b.Code) })
	w := newSQLText(ctx, tx, `INSERT INTO dossiers (`+dossierColumns+`)`, "")
	opt := func(t *time.Time) {
		if t == nil {
			w.null()
		} else {
			w.int(t.UnixNano())
		}
	}
	for _, d := range list {
		w.row().str(d.Code).str(string(d.State)).str(d.Procedure).str(string(d.Channel)).
			str(d.ReceivingUnit).str(d.Owner).int(d.ReceivedAt.UnixNano()).int(d.Due.UnixNano())
		opt(d.PromisedDue)
		w.int(boolInt(d.OverdueMarked))
		opt(d.PausedAt)
		opt(d.ResolvedAt)
		w.str(string(d.Outcome)).str(string(d.Result))
		opt(d.ClosedAt)
		w.int(int64(d.Version)).int(d.LastAt.UnixNano()).int(int64(d.LastSeq))
		if err := w.end(); err != nil {
			return fmt.Errorf("write dossiers: %w", err)
		}
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("write dossiers: %w", err)
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func nanos(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

// sortedKeys returns the keys of m in the order of the tables' primary
// keys: grain, unit, period, then procedure.
func sortedKeys[V any](m map[gKey]V) []gKey {
	keys := make([]gKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b gKey) int {
		return cmp.Or(cmp.Compare(a.grain, b.grain), cmp.Compare(a.unit, b.unit),
			cmp.Compare(a.period, b.period), cmp.Compare(a.proc, b.proc))
	})
	return keys
}

const flowSet = `received_online = received_online + excluded.received_online,
	received_direct = received_direct + excluded.received_direct,
	received_postal = received_postal + excluded.received_postal,
	resolved_early = resolved_early + excluded.resolved_early,
	resolved_on_time = resolved_on_time + excluded.resolved_on_time,
	resolved_late = resolved_late + excluded.resolved_late,
	withdrawn = withdrawn + excluded.withdrawn`

func writeFlows(ctx context.Context, tx *sql.Tx, flows map[gKey]*flowVals) error {
	plain := newMultiInsert(ctx, tx, `INSERT INTO flow (grain, period, unit, received_online, received_direct,
		received_postal, resolved_early, resolved_on_time, resolved_late, withdrawn)`, 10,
		`ON CONFLICT (grain, period, unit) DO UPDATE SET `+flowSet)
	byProc := newMultiInsert(ctx, tx, `INSERT INTO flow_proc (grain, period, procedure, unit, received_online,
		received_direct, received_postal, resolved_early, resolved_on_time, resolved_late, withdrawn)`, 11,
		`ON CONFLICT (grain, period, procedure, unit) DO UPDATE SET `+flowSet)
	err := func() error {
		for _, k := range sortedKeys(flows) {
			v := flows[k]
			var err error
			if k.proc == "" {
				err = plain.add(k.grain, k.period, k.unit, v[0], v[1], v[2], v[3], v[4], v[5], v[6])
			} else {
				err = byProc.add(k.grain, k.period, k.proc, k.unit, v[0], v[1], v[2], v[3], v[4], v[5], v[6])
			}
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if err := cmp.Or(err, plain.flush(), byProc.flush()); err != nil {
		return fmt.Errorf("write flow: %w", err)
	}
	return nil
}

const stockSet = `open = open + excluded.open, paused = paused + excluded.paused, overdue = overdue + excluded.overdue`

func writeStocks(ctx context.Context, tx *sql.Tx, stocks map[gKey]*stockVals) error {
	const set = stockSet
	plain := newMultiInsert(ctx, tx, `INSERT INTO stock (grain, period, unit, open, paused, overdue)`, 6,
		`ON CONFLICT (grain, period, unit) DO UPDATE SET `+set)
	byProc := newMultiInsert(ctx, tx, `INSERT INTO stock_proc (grain, period, procedure, unit, open, paused, overdue)`, 7,
		`ON CONFLICT (grain, period, procedure, unit) DO UPDATE SET `+set)
	err := func() error {
		for _, k := range sortedKeys(stocks) {
			v := stocks[k]
			if *v == (stockVals{}) {
				continue
			}
			var err error
			if k.proc == "" {
				err = plain.add(k.grain, k.period, k.unit, v[0], v[1], v[2])
			} else {
				err = byProc.add(k.grain, k.period, k.proc, k.unit, v[0], v[1], v[2])
			}
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if err := cmp.Or(err, plain.flush(), byProc.flush()); err != nil {
		return fmt.Errorf("write stock: %w", err)
	}
	return nil
}

func writeTransfers(ctx context.Context, tx *sql.Tx, transfers map[gTrKey]int64) error {
	keys := make([]gTrKey, 0, len(transfers))
	for k := range transfers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b gTrKey) int {
		return cmp.Or(cmp.Compare(a.grain, b.grain), cmp.Compare(a.from, b.from),
			cmp.Compare(a.period, b.period), cmp.Compare(a.proc, b.proc), cmp.Compare(a.to, b.to))
	})
	plain := newMultiInsert(ctx, tx, `INSERT INTO transfer (grain, period, from_unit, to_unit, n)`, 5,
		`ON CONFLICT (grain, period, from_unit, to_unit) DO UPDATE SET n = n + excluded.n`)
	byProc := newMultiInsert(ctx, tx, `INSERT INTO transfer_proc (grain, period, procedure, from_unit, to_unit, n)`, 6,
		`ON CONFLICT (grain, period, procedure, from_unit, to_unit) DO UPDATE SET n = n + excluded.n`)
	err := func() error {
		for _, k := range keys {
			var err error
			if k.proc == "" {
				err = plain.add(k.grain, k.period, k.from, k.to, transfers[k])
			} else {
				err = byProc.add(k.grain, k.period, k.proc, k.from, k.to, transfers[k])
			}
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if err := cmp.Or(err, plain.flush(), byProc.flush()); err != nil {
		return fmt.Errorf("write transfer: %w", err)
	}
	return nil
}

// sqlText writes rows as SQL text: INSERT … VALUES with the values as
// literals, many rows to a statement, executed without parameters: one cgo
// call per statement, where binding makes one per value and database/sql
// converts each. A rebuild writes every row this way; measured, it is a
// little faster than bound 64-row statements (multiInsert), SQLite's own
// work being most of either.
type sqlText struct {
	ctx context.Context
	// exec is ctx without its cancellation, for the statements: the
	// driver runs a statement under a context that can be cancelled
	// through its statement cache and in a goroutine of its own, and
	// one without in a single call. ctx is checked before each instead.
	exec context.Context
	tx   *sql.Tx
	head string
	tail string // after the rows: an ON CONFLICT clause, or ""
	buf  []byte
	rows int
}

// sqlTextBytes is the size at which a statement is sent.
const sqlTextBytes = 256 << 10

func newSQLText(ctx context.Context, tx *sql.Tx, head, tail string) *sqlText {
	return &sqlText{ctx: ctx, exec: context.WithoutCancel(ctx), tx: tx, head: head, tail: tail,
		buf: make([]byte, 0, sqlTextBytes+4096)}
}

// row starts a row; add its values with int, str and null.
func (w *sqlText) row() *sqlText {
	if w.rows == 0 {
		w.buf = append(w.buf[:0], w.head...)
		w.buf = append(w.buf, " VALUES ("...)
	} else {
		w.buf = append(w.buf, "),("...)
	}
	w.rows++
	return w
}

func (w *sqlText) sep() {
	if c := w.buf[len(w.buf)-1]; c != '(' {
		w.buf = append(w.buf, ',')
	}
}

func (w *sqlText) int(n int64) *sqlText {
	w.sep()
	w.buf = strconv.AppendInt(w.buf, n, 10)
	return w
}

func (w *sqlText) null() *sqlText {
	w.sep()
	w.buf = append(w.buf, "NULL"...)
	return w
}

// str appends s as a text literal. Text holding a NUL byte, which an SQL
// string cannot carry, goes as a blob literal cast to text.
func (w *sqlText) str(s string) *sqlText {
	w.sep()
	if strings.IndexByte(s, 0) >= 0 {
		w.buf = append(w.buf, "CAST(X'"...)
		w.buf = hex.AppendEncode(w.buf, []byte(s))
		w.buf = append(w.buf, "' AS TEXT)"...)
		return w
	}
	w.buf = append(w.buf, '\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			w.buf = append(w.buf, '\'')
		}
		w.buf = append(w.buf, s[i])
	}
	w.buf = append(w.buf, '\'')
	return w
}

// end ends a row, sending the statement when it is large enough.
func (w *sqlText) end() error {
	if len(w.buf) >= sqlTextBytes {
		return w.flush()
	}
	return nil
}

// flush sends the rows written since the last statement.
func (w *sqlText) flush() error {
	if w.rows == 0 {
		return nil
	}
	w.buf = append(w.buf, ") "...)
	w.buf = append(w.buf, w.tail...)
	w.rows = 0
	if err := w.ctx.Err(); err != nil {
		return err
	}
	_, err := w.tx.ExecContext(w.exec, string(w.buf))
	return err
}
