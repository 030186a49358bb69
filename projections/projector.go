package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Batch sizes: live batches are whatever arrived while the previous batch
// was written, up to RunBatch; a rebuild reads in larger ones.
const (
	RunBatch     = 5000
	RebuildBatch = 20000
)

// DefaultCacheSize bounds the dossier states the projector keeps in memory.
const DefaultCacheSize = 200_000

// Projector folds the stream into the read model. Apply is safe to call
// from several goroutines but batches are applied one at a time.
type Projector struct {
	db        *DB
	units     *hoso.Units
	log       *slog.Logger
	cacheSize int

	mu      sync.Mutex // serialises Apply; guards the fields below
	loaded  bool
	gen     uint64
	cache   *stateCache
	fresh   bool // the file had no dossier when loaded: with no cache drops, a miss means "new"
	seen    map[string]bool
	warned  map[string]bool
	batches int

	applied     atomic.Uint64
	appliedTime atomic.Int64              // Unix ns of the stream time of applied_seq
	ledger      atomic.Pointer[ledgerRef] // set by Run; CaughtUp reads it

	// daysOnly, set while a rebuild loads a new file, writes the
	// aggregates at the day grain only; the rebuild derives the months and
	// years from the days when the load ends (deriveGrains).
	daysOnly bool

	// hook, when set (by tests), runs between the statements of a batch's
	// transaction; an error aborts the batch as a crash there would.
	hook func(ctx context.Context, stage string) error
}

// ledgerRef boxes the interface so that an atomic.Pointer can hold it.
type ledgerRef struct{ hoso.Ledger }

// Option configures a Projector.
type Option func(*Projector)

// WithLogger sends the projector's warnings to log.
func WithLogger(log *slog.Logger) Option { return func(p *Projector) { p.log = log } }

// WithCacheSize bounds the number of dossier states kept in memory.
func WithCacheSize(n int) Option { return func(p *Projector) { p.cacheSize = max(n, 2) } }

// NewProjector returns a projector into db. units is the registry the
// events were validated against: the projector keys its aggregates by unit
// code (reports resolve codes to rows at query time) and uses the registry
// only to warn about a code it does not know, whose dossiers no report row
// will show.
func NewProjector(db *DB, units *hoso.Units, opts ...Option) *Projector {
	p := &Projector{db: db, units: units, log: slog.New(slog.DiscardHandler), cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o(p)
	}
	if seq, err := db.AppliedSeq(context.Background()); err == nil {
		p.applied.Store(seq)
	}
	return p
}

// AppliedSeq is the stream sequence of the last committed batch.
func (p *Projector) AppliedSeq() uint64 { return p.applied.Load() }

// AppliedTime is when the stream stored the message at AppliedSeq; zero
// before the first message.
func (p *Projector) AppliedTime() time.Time {
	if ns := p.appliedTime.Load(); ns != 0 {
		return time.Unix(0, ns).UTC()
	}
	return time.Time{}
}

// GapError is a batch that does not continue where the projection stands.
type GapError struct {
	Want, Got uint64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("projection: gap in the stream: want seq %d, got seq %d", e.Want, e.Got)
}

// Apply projects msgs, which must be in stream order, in one transaction
// together with the sequence they reach. Messages at or below AppliedSeq
// are skipped, so re-applying is harmless; the first new message must be
// AppliedSeq+1 and the rest consecutive. A message that does not decode or
// fold onto its dossier fails the whole batch with an error naming its seq.
func (p *Projector) Apply(ctx context.Context, msgs []hoso.LedgerEntry) error {
	return p.apply(ctx, msgs, nil)
}

// apply is Apply with events, when not nil, holding msgs already decoded
// (a nil element is decoded here).
func (p *Projector) apply(ctx context.Context, msgs []hoso.LedgerEntry, events []*hoso.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	db := p.db
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.w == nil {
		return errClosed
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection: begin: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit
	if !p.loaded || p.gen != db.gen {
		if err := p.load(ctx, tx); err != nil {
			return err
		}
	}
	applied := p.applied.Load()
	for len(msgs) > 0 && msgs[0].Seq <= applied {
		msgs = msgs[1:]
		if events != nil {
			events = events[1:]
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	for i, m := range msgs {
		if want := applied + 1 + uint64(i); m.Seq != want {
			return &GapError{Want: want, Got: m.Seq}
		}
	}
	b, err := p.fold(ctx, tx, msgs, events)
	if err == nil {
		err = p.write(ctx, tx, b, msgs[len(msgs)-1])
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		// The transaction is gone; so is any certainty about what the
		// process remembers. Reload from the file before the next batch.
		p.loaded = false
		return fmt.Errorf("projection: seqs %d-%d: %w", msgs[0].Seq, msgs[len(msgs)-1].Seq, err)
	}
	for code, d := range b.dirty {
		p.cache.put(code, d)
	}
	for code := range b.units {
		p.seen[code] = true
	}
	last := msgs[len(msgs)-1]
	p.applied.Store(last.Seq)
	p.appliedTime.Store(last.Time.UnixNano())
	if p.batches++; p.batches%optimizeEvery == 0 {
		if err := optimize(db.w); err != nil {
			p.log.Warn("projection: optimize", "err", err)
		}
	}
	return nil
}

// grains is how many grains a batch writes, from the day up.
func (p *Projector) grains() int {
	if p.daysOnly {
		return 1
	}
	return 3
}

// optimizeEvery is how many batches pass between refreshes of the
// planner's statistics.
const optimizeEvery = 256

// load reads the projection's position and resets what the process
// remembers of the file.
func (p *Projector) load(ctx context.Context, tx *sql.Tx) error {
	seq, err := readAppliedSeq(ctx, tx)
	if err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM dossiers LIMIT 1)`).Scan(&n); err != nil {
		return fmt.Errorf("projection: load: %w", err)
	}
	seen := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT code FROM units_seen`)
	if err != nil {
		return fmt.Errorf("projection: load: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			return fmt.Errorf("projection: load: %w", err)
		}
		seen[code] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("projection: load: %w", err)
	}
	var at string
	err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaAppliedTime).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		p.appliedTime.Store(0)
	case err != nil:
		return fmt.Errorf("projection: load: %w", err)
	default:
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			p.appliedTime.Store(t.UnixNano())
		}
	}
	p.applied.Store(seq)
	p.cache = newStateCache(p.cacheSize)
	p.fresh = n == 0
	p.seen = seen
	if p.warned == nil {
		p.warned = map[string]bool{}
	}
	p.gen = p.db.gen
	p.loaded = true
	return nil
}

// Indexes of flow counters.
const (
	fOnline = iota
	fDirect
	fPostal
	fEarly
	fOnTime
	fLate
	fWithdrawn
	nFlow
)

// Indexes of stock counters.
const (
	sOpen = iota
	sPaused
	sOverdue
	nStock
)

type (
	flowVals  [nFlow]int64
	stockVals [nStock]int64
	// aggKey is a delta's unit and local day; proc is "" for the tables
	// without the procedure dimension.
	aggKey struct {
		unit, proc string
		day        int64
	}
	trKey struct {
		from, to, proc string
		day            int64
	}
)

// batch is what a batch changes, aggregated in memory so that the many
// events that hit one (unit, day) cost one row write.
type batch struct {
	dirty     map[string]*hoso.Dossier
	flows     map[aggKey]*flowVals
	stocks    map[aggKey]*stockVals
	transfers map[trKey]int64
	units     map[string]time.Time // unit codes (not yet in units_seen) and when one was used
}

func (p *Projector) fold(ctx context.Context, tx *sql.Tx, msgs []hoso.LedgerEntry, decoded []*hoso.Event) (*batch, error) {
	events := make([]*hoso.Event, len(msgs))
	for i, m := range msgs {
		if decoded != nil && decoded[i] != nil {
			events[i] = decoded[i]
			continue
		}
		e, err := m.Event()
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	states, err := p.preload(ctx, tx, events)
	if err != nil {
		return nil, err
	}
	b := &batch{
		dirty:     make(map[string]*hoso.Dossier),
		flows:     make(map[aggKey]*flowVals),
		stocks:    make(map[aggKey]*stockVals),
		transfers: make(map[trKey]int64),
		units:     make(map[string]time.Time),
	}
	for _, e := range events {
		prev, ok := b.dirty[e.Dossier]
		if !ok {
			if prev, ok = states[e.Dossier]; !ok {
				prev = &hoso.Dossier{}
			}
		}
		if e.Version != prev.Version+1 {
			return nil, fmt.Errorf("seq %d: dossier %q: event version %d does not follow version %d",
				e.Seq, e.Dossier, e.Version, prev.Version)
		}
		next := *prev
		if err := next.Apply(e); err != nil {
			return nil, fmt.Errorf("seq %d: dossier %q does not fold: %w", e.Seq, e.Dossier, err)
		}
		b.account(prev, &next, e)
		b.dirty[e.Dossier] = &next
	}
	for code, at := range b.units {
		if p.seen[code] {
			delete(b.units, code)
		} else if p.units != nil && !p.warned[code] {
			if _, known := p.units.At(code, at); !known {
				p.warned[code] = true
				p.log.Warn("projection: unit code unknown to the registry; its dossiers appear in no report row", "unit", code)
			}
		}
	}
	return b, nil
}

// preload returns the state of every dossier of the batch that exists:
// from the cache, and the others from the file in one query. A projection
// that started empty and never dropped a cache entry skips the query: a
// dossier not in its cache does not exist yet.
func (p *Projector) preload(ctx context.Context, tx *sql.Tx, events []*hoso.Event) (map[string]*hoso.Dossier, error) {
	states := make(map[string]*hoso.Dossier, len(events))
	var missing []string
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		if seen[e.Dossier] {
			continue
		}
		seen[e.Dossier] = true
		if d, ok := p.cache.get(e.Dossier); ok {
			states[e.Dossier] = d
		} else {
			missing = append(missing, e.Dossier)
		}
	}
	if len(missing) == 0 || (p.fresh && !p.cache.dropped) {
		return states, nil
	}
	list, _ := json.Marshal(missing) // cannot fail: strings only
	rows, err := tx.QueryContext(ctx, `SELECT `+dossierColumns+` FROM dossiers
		WHERE code IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("load dossiers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDossier(rows)
		if err != nil {
			return nil, fmt.Errorf("load dossiers: %w", err)
		}
		states[d.Code] = d
	}
	return states, rows.Err()
}

// status is what of a dossier the stock tables count.
type status struct {
	owner        string
	open, paused bool
	dueDay       int64
}

func statusOf(d *hoso.Dossier) status {
	if !d.State.Open() {
		return status{}
	}
	return status{
		owner:  d.Owner,
		open:   true,
		paused: d.State == hoso.StateAwaitingSupplement,
		dueDay: hoso.LocalDate(d.Due),
	}
}

// account records what folding e into prev (giving next) changes.
func (b *batch) account(prev, next *hoso.Dossier, e *hoso.Event) {
	day := hoso.LocalDate(e.At)
	proc := next.Procedure
	switch e.Type {
	case hoso.EventReceived:
		i := fDirect
		switch next.Channel {
		case hoso.ChannelOnline:
			i = fOnline
		case hoso.ChannelPostal:
			i = fPostal
		}
		b.flow(next.ReceivingUnit, proc, day, i, e.At)
	case hoso.EventTransferred:
		b.units[prev.Owner], b.units[next.Owner] = e.At, e.At
		for _, pr := range [2]string{"", proc} {
			b.transfers[trKey{prev.Owner, next.Owner, pr, day}]++
		}
	case hoso.EventResolved:
		i := fLate
		switch next.Result {
		case hoso.ClassEarly:
			i = fEarly
		case hoso.ClassOnTime:
			i = fOnTime
		}
		b.flow(prev.Owner, proc, day, i, e.At)
	case hoso.EventWithdrawn:
		b.flow(prev.Owner, proc, day, fWithdrawn, e.At)
	}
	// The stock at the end of day D is the sum of deltas at days <= D. A
	// change at day e replaces the old trajectory by the new one from e on.
	if ps, ns := statusOf(prev), statusOf(next); ps != ns {
		b.trajectory(ps, proc, day, -1, e.At)
		b.trajectory(ns, proc, day, +1, e.At)
	}
}

func (b *batch) flow(unit, proc string, day int64, i int, at time.Time) {
	b.units[unit] = at
	for _, pr := range [2]string{"", proc} {
		k := aggKey{unit, pr, day}
		v := b.flows[k]
		if v == nil {
			v = new(flowVals)
			b.flows[k] = v
		}
		v[i]++
	}
}

// trajectory adds sign times the contribution of s from day on: open and
// paused from day; overdue (open, not paused, due before the start of day
// D+1, i.e. localdate(due) <= D) from max(day, localdate(due)).
func (b *batch) trajectory(s status, proc string, day int64, sign int64, at time.Time) {
	if !s.open {
		return
	}
	b.units[s.owner] = at
	for _, pr := range [2]string{"", proc} {
		b.stock(aggKey{s.owner, pr, day}, sOpen, sign)
		if s.paused {
			b.stock(aggKey{s.owner, pr, day}, sPaused, sign)
		} else {
			b.stock(aggKey{s.owner, pr, max(day, s.dueDay)}, sOverdue, sign)
		}
	}
}

func (b *batch) stock(k aggKey, i int, delta int64) {
	v := b.stocks[k]
	if v == nil {
		v = new(stockVals)
		b.stocks[k] = v
	}
	v[i] += delta
}

// gKey is a row of an aggregate table.
type gKey struct {
	grain      int
	period     int64
	unit, proc string
}

type gTrKey struct {
	grain          int
	period         int64
	from, to, proc string
}

// grains expands a day to its period at each grain.
type grains struct{ months, years map[int64]int64 }

func (g *grains) of(day int64) [3]int64 {
	m, ok := g.months[day]
	if !ok {
		m = monthOf(day)
		g.months[day] = m
		g.years[day] = m / 12
	}
	return [3]int64{day, m, g.years[day]}
}

func (p *Projector) write(ctx context.Context, tx *sql.Tx, b *batch, last hoso.LedgerEntry) error {
	step := func(stage string) error {
		if p.hook != nil {
			return p.hook(ctx, stage)
		}
		return nil
	}
	if err := writeDossiers(ctx, tx, b.dirty); err != nil {
		return err
	}
	if err := step("dossiers"); err != nil {
		return err
	}
	if len(b.units) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO units_seen (code) VALUES (?)`)
		if err != nil {
			return err
		}
		for code := range b.units {
			if _, err := st.ExecContext(ctx, code); err != nil {
				st.Close()
				return fmt.Errorf("write units_seen: %w", err)
			}
		}
		st.Close()
	}
	g := grains{months: map[int64]int64{}, years: map[int64]int64{}}
	flows := map[gKey]*flowVals{}
	for k, v := range b.flows {
		periods := g.of(k.day)
		for grain, period := range periods[:p.grains()] {
			gk := gKey{grain, period, k.unit, k.proc}
			acc := flows[gk]
			if acc == nil {
				acc = new(flowVals)
				flows[gk] = acc
			}
			for i := range v {
				acc[i] += v[i]
			}
		}
	}
	if err := writeFlows(ctx, tx, flows); err != nil {
		return err
	}
	if err := step("flows"); err != nil {
		return err
	}
	stocks := map[gKey]*stockVals{}
	for k, v := range b.stocks {
		if *v == (stockVals{}) {
			continue
		}
		periods := g.of(k.day)
		for grain, period := range periods[:p.grains()] {
			gk := gKey{grain, period, k.unit, k.proc}
			acc := stocks[gk]
			if acc == nil {
				acc = new(stockVals)
				stocks[gk] = acc
			}
			for i := range v {
				acc[i] += v[i]
			}
		}
	}
	if err := writeStocks(ctx, tx, stocks); err != nil {
		return err
	}
	if err := step("stocks"); err != nil {
		return err
	}
	transfers := map[gTrKey]int64{}
	for k, n := range b.transfers {
		periods := g.of(k.day)
		for grain, period := range periods[:p.grains()] {
			transfers[gTrKey{grain, period, k.from, k.to, k.proc}] += n
		}
	}
	if err := writeTransfers(ctx, tx, transfers); err != nil {
		return err
	}
	if err := step("transfers"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		metaAppliedSeq, strconv.FormatUint(last.Seq, 10),
		metaAppliedTime, last.Time.UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("write applied_seq: %w", err)
	}
	return step("meta")
}

// stateCache keeps recently used dossier states in two generations:
// entries not touched for a whole generation are dropped. Entries are never
// modified in place; a fold makes a new one.
type stateCache struct {
	cur, old map[string]*hoso.Dossier
	limit    int
	dropped  bool // some entry was dropped since the cache was made
}

func newStateCache(limit int) *stateCache {
	return &stateCache{cur: map[string]*hoso.Dossier{}, old: map[string]*hoso.Dossier{}, limit: limit}
}

func (c *stateCache) get(code string) (*hoso.Dossier, bool) {
	if d, ok := c.cur[code]; ok {
		return d, true
	}
	if d, ok := c.old[code]; ok {
		c.put(code, d)
		return d, true
	}
	return nil, false
}

func (c *stateCache) put(code string, d *hoso.Dossier) {
	if len(c.cur) >= c.limit/2 {
		c.dropped = c.dropped || len(c.old) > 0
		c.old, c.cur = c.cur, make(map[string]*hoso.Dossier, c.limit/2)
	}
	c.cur[code] = d
	delete(c.old, code)
}
