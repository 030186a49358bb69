package projections

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"slices"
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

// bulkDossiers writes the rows of list, every one new, sorting list by
// code.
func bulkDossiers(ctx context.Context, conn driver.Conn, list []*hoso.Dossier) error {
	slices.SortFunc(list, func(a, b *hoso.Dossier) int { return cmp.Compare(a.Code, b.Code) })
	w := newBulkRows(ctx, conn, `INSERT INTO dossiers (`+dossierColumns+`)`, 18, "")
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
			w.flush()
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

// bulkRows writes rows through a prepared INSERT of many rows whose
// values are bound, run with QueryContext: there go-sqlite3 binds all of a
// statement's values and steps it in one cgo call (ExecContext makes one
// call per value). SQLite parses the statement once, where rows written as
// SQL text were parsed value by value, which was most of SQLite's work for
// a rebuild: the 100,000 dossier rows of hoso bench took 0.37-0.44 s of
// CPU as 256 KiB statements of text and 0.20-0.24 s bound 256 rows at a
// time. It talks to the driver's connection itself (rawTx): database/sql
// would copy every value of every statement into a new slice.
type bulkRows struct {
	ctx        context.Context // checked before each statement
	conn       driver.Conn
	head, tail string
	cols, per  int // values per row, rows per statement
	full       driver.Stmt
	args       []driver.NamedValue
}

// bulkValues bounds the values of one statement: rows per statement pay
// off up to a few hundred.
const bulkValues = 4096

// newBulkRows writes rows of cols values with head (INSERT INTO t (…)) and
// tail (an ON CONFLICT clause, or "").
func newBulkRows(ctx context.Context, conn driver.Conn, head string, cols int, tail string) *bulkRows {
	per := max(1, bulkValues/cols)
	return &bulkRows{ctx: ctx, conn: conn, head: head, tail: tail, cols: cols, per: per,
		args: make([]driver.NamedValue, 0, cols*per)}
}

func (w *bulkRows) query(rows int) string {
	tuple := "(" + strings.Repeat("?,", w.cols-1) + "?)"
	return w.head + " VALUES " + strings.Repeat(tuple+",", rows-1) + tuple + " " + w.tail
}

// row starts a row; add its cols values with int, str and null, then end
// it.
func (w *bulkRows) row() *bulkRows { return w }

func (w *bulkRows) add(v driver.Value) *bulkRows {
	w.args = append(w.args, driver.NamedValue{Ordinal: len(w.args) + 1, Value: v})
	return w
}

func (w *bulkRows) int(n int64) *bulkRows  { return w.add(n) }
func (w *bulkRows) null() *bulkRows        { return w.add(nil) }
func (w *bulkRows) str(s string) *bulkRows { return w.add(s) }

// end ends a row, running the statement when it has its rows.
func (w *bulkRows) end() error {
	if len(w.args) < w.cols*w.per {
		return nil
	}
	if w.full == nil {
		st, err := rawPrepare(w.ctx, w.conn, w.query(w.per))
		if err != nil {
			return err
		}
		w.full = st
	}
	err := rawInsert(w.ctx, w.full, w.args)
	w.args = w.args[:0]
	return err
}

// flush writes the rows not yet written and releases the statements.
func (w *bulkRows) flush() error {
	var err error
	if n := len(w.args) / w.cols; n > 0 {
		var st driver.Stmt
		if st, err = rawPrepare(w.ctx, w.conn, w.query(n)); err == nil {
			err = cmp.Or(rawInsert(w.ctx, st, w.args), st.Close())
		}
		w.args = w.args[:0]
	}
	if w.full != nil {
		err = cmp.Or(err, w.full.Close())
		w.full = nil
	}
	return err
}

// rawTx runs fn in a transaction of w's connection, with the driver's
// connection itself (see bulkRows).
func rawTx(ctx context.Context, w *sql.DB, fn func(driver.Conn) error) error {
	c, err := w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		conn, ok := dc.(interface {
			driver.Conn
			driver.ConnBeginTx
		})
		if !ok {
			return fmt.Errorf("driver connection %T cannot begin a transaction with a context", dc)
		}
		tx, err := conn.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if err := fn(conn); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

func rawPrepare(ctx context.Context, conn driver.Conn, query string) (driver.Stmt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p, ok := conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return conn.Prepare(query)
}

// rawInsert runs st, an INSERT, with args. The driver runs a query's first
// step when it is made; Next runs it where it would not. It runs without
// ctx's cancellation, which costs the driver a watch per statement; ctx is
// checked before.
func rawInsert(ctx context.Context, st driver.Stmt, args []driver.NamedValue) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return fmt.Errorf("driver statement %T cannot query with a context", st)
	}
	rows, err := q.QueryContext(context.WithoutCancel(ctx), args)
	if err != nil {
		return err
	}
	for err == nil {
		err = rows.Next(nil)
	}
	if err == io.EOF {
		err = nil
	}
	return cmp.Or(err, rows.Close())
}

// updateReturned writes the returns of dossiers written while resolved:
// each updates exactly its row as it was written, or the load fails.
func updateReturned(ctx context.Context, conn driver.Conn, list []*hoso.Dossier) error {
	const update = `UPDATE dossiers SET state = ?, closed_at = ?, version = ?, last_at = ?, last_seq = ?
		WHERE code = ? AND state = 'resolved' AND version = ?`
	for _, d := range list {
		var closed any
		if d.ClosedAt != nil {
			closed = d.ClosedAt.UnixNano()
		}
		args := []driver.NamedValue{{Ordinal: 1, Value: string(d.State)}, {Ordinal: 2, Value: closed},
			{Ordinal: 3, Value: int64(d.Version)}, {Ordinal: 4, Value: d.LastAt.UnixNano()},
			{Ordinal: 5, Value: int64(d.LastSeq)}, {Ordinal: 6, Value: d.Code}, {Ordinal: 7, Value: int64(d.Version - 1)}}
		res, err := rawExecArgs(ctx, conn, update, args)
		if err != nil {
			return fmt.Errorf("write the return of dossier %q: %w", d.Code, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("write the return of dossier %q: %d rows of version %d resolved (%v)", d.Code, n, d.Version-1, err)
		}
	}
	return nil
}

// rawExec runs query, which takes no argument.
func rawExec(ctx context.Context, conn driver.Conn, query string) error {
	_, err := rawExecArgs(ctx, conn, query, nil)
	return err
}

// rawExecArgs runs query with args on the driver's connection.
func rawExecArgs(ctx context.Context, conn driver.Conn, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := conn.(driver.ExecerContext)
	if !ok {
		return nil, fmt.Errorf("driver connection %T cannot execute with a context", conn)
	}
	return e.ExecContext(ctx, query, args)
}
