package projections

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
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

func writeDossiers(ctx context.Context, tx *sql.Tx, dirty map[string]*hoso.Dossier) error {
	codes := make([]string, 0, len(dirty))
	for code := range dirty {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	ins := newMultiInsert(ctx, tx, `INSERT INTO dossiers (`+dossierColumns+`)`, 18,
		`ON CONFLICT (code) DO UPDATE SET state = excluded.state, procedure = excluded.procedure,
			channel = excluded.channel, receiving_unit = excluded.receiving_unit, owner = excluded.owner,
			received_at = excluded.received_at, due = excluded.due, promised_due = excluded.promised_due,
			overdue_marked = excluded.overdue_marked, paused_at = excluded.paused_at,
			resolved_at = excluded.resolved_at, outcome = excluded.outcome, result = excluded.result,
			closed_at = excluded.closed_at, version = excluded.version, last_at = excluded.last_at,
			last_seq = excluded.last_seq`)
	for _, code := range codes {
		d := dirty[code]
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

func writeStocks(ctx context.Context, tx *sql.Tx, stocks map[gKey]*stockVals) error {
	const set = `open = open + excluded.open, paused = paused + excluded.paused, overdue = overdue + excluded.overdue`
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
