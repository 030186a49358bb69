package eventstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats.go/jetstream"
)

// Ingester validates events against the units registry, the working calendar
// and the dossier's state, and appends them to the store. It is the one
// implementation of hoso.EventService behind both doors.
type Ingester struct {
	store    *Store
	units    *hoso.Units
	calendar *hoso.Calendar
	now      hoso.Clock

	// BatchInFlight bounds how many events of a batch are published before
	// their acknowledgements are awaited (the client's async publish limit
	// is 4,000).
	BatchInFlight int
	// MaxRetries bounds re-reads after another writer won a race.
	MaxRetries int

	// stripes serialise appends to one dossier inside this process, so
	// concurrent requests for it do not race each other through the stream.
	stripes [1024]sync.Mutex
	seed    maphash.Seed
	cache   *dossierCache
	// noDossier is the state of a dossier not yet in the stream.
	noDossier cachedDossier
}

var (
	_ hoso.EventService   = (*Ingester)(nil)
	_ hoso.DossierService = (*Ingester)(nil)
	_ hoso.Ledger         = (*Store)(nil)
)

// NewIngester returns an ingest service over store.
func NewIngester(store *Store, units *hoso.Units, calendar *hoso.Calendar, now hoso.Clock) *Ingester {
	if now == nil {
		now = time.Now
	}
	return &Ingester{
		store: store, units: units, calendar: calendar, now: now,
		BatchInFlight: 1000, MaxRetries: 8,
		seed: maphash.MakeSeed(), cache: newDossierCache(200_000),
	}
}

// cachedDossier is the folded state of a dossier as of its last message on
// the stream. It may be stale when another process appended since; the
// stream's expected-last-subject-sequence check catches that.
type cachedDossier struct {
	d       hoso.Dossier
	lastSeq uint64
	// ids are the ids of the dossier's events with their sequences, in
	// order. A dossier has a handful of events, so a slice, copied on each
	// append, costs less than a map.
	ids []eventID
}

type eventID struct {
	id  string
	seq uint64
}

// seqOf returns the sequence of the dossier's event with id.
func (cd *cachedDossier) seqOf(id string) (uint64, bool) {
	for _, x := range cd.ids {
		if x.id == id {
			return x.seq, true
		}
	}
	return 0, false
}

// Append validates and appends one event, as a batch of one: awaiting the
// acknowledgement of an asynchronous publish costs less than JetStream's
// synchronous publish, a request with a reply subscription of its own.
func (in *Ingester) Append(ctx context.Context, e *hoso.Event) (hoso.AppendResult, error) {
	r := in.appendBatch(ctx, []*hoso.Event{e}, true)[0]
	return r.Result, r.Err
}

// appendKey is what appends serialise on: the dossier, or in a bucketed
// stream its bucket, since every append to a bucket expects its last
// sequence.
func (in *Ingester) appendKey(code string) uint64 {
	if in.store.buckets > 0 {
		return uint64(BucketOf(code, in.store.buckets))
	}
	return maphash.String(in.seed, code)
}

func (in *Ingester) stripeOf(code string) int {
	return int(in.appendKey(code) % uint64(len(in.stripes)))
}

// appendRetrying appends e, holding its dossier's stripe, once another
// writer won the dossier from its first attempt: each time that happens it
// re-reads and re-validates, up to MaxRetries times. With msgID
// the publish carries the event's id as JetStream's Msg-Id.
func (in *Ingester) appendRetrying(ctx context.Context, e *hoso.Event, msgID bool) (hoso.AppendResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := in.appendLocked(ctx, e, msgID)
		if !errors.Is(err, errWrongLastSeq) {
			return res, err
		}
		in.cache.drop(e.Dossier)
		if attempt >= in.MaxRetries {
			return hoso.AppendResult{}, hoso.Errorf(hoso.ECONFLICT,
				"dossier %q: concurrent writers kept winning after %d attempts; retry", e.Dossier, attempt+1)
		}
	}
}

// prepare checks what does not depend on the dossier's state and fills in
// the derived fields: the submitter, the id and the due computed from days.
//
// The submitter is the principal the door authenticated and put in ctx,
// which must have the unit in its scope on the event's date. Without one
// the caller is the ledger's own process (the deadline watcher, an import
// or a benchmark run by whoever holds the data directory), and the event
// is the ledger's: SystemPrincipal.
func (in *Ingester) prepare(ctx context.Context, e *hoso.Event) error {
	if err := e.CheckClock(in.now()); err != nil {
		return err
	}
	if _, ok := in.units.At(e.Unit, e.At); !ok {
		return hoso.FieldErrorf("unit", "unknown unit %q on %s", e.Unit, e.At.In(hoso.VietnamZone).Format(time.DateOnly))
	}
	e.By = hoso.SystemPrincipal
	if p := hoso.PrincipalFromContext(ctx); p != nil {
		if p.Role != hoso.RoleDesk {
			return hoso.Errorf(hoso.EFORBIDDEN, "%s may not submit events: only a desk may", p)
		}
		if err := p.CheckScope(in.units, "unit", e.Unit, e.At); err != nil {
			return err
		}
		e.By = p.Name
	}
	if e.ToUnit != "" {
		if _, ok := in.units.At(e.ToUnit, e.At); !ok {
			return hoso.FieldErrorf("to_unit", "unknown unit %q on %s", e.ToUnit, e.At.In(hoso.VietnamZone).Format(time.DateOnly))
		}
	}
	if e.ID == "" {
		e.ID = e.DeriveID()
	}
	if e.Type == hoso.EventReceived && e.Days != 0 {
		due, err := in.calendar.Due(in.units.Province(e.Unit, e.At), e.At, e.Days)
		if err != nil {
			return err
		}
		e.Due = due
	}
	return nil
}

// appendLocked validates e against the dossier's state as the stream holds
// it and publishes it, waiting for the acknowledgement.
func (in *Ingester) appendLocked(ctx context.Context, e *hoso.Event, msgID bool) (hoso.AppendResult, error) {
	p, res, err := in.stage(ctx, e, false)
	if p.e == nil || err != nil {
		return res, err
	}
	ack, err := in.store.publish(ctx, e.Dossier, msgIDOf(e, msgID), p.expect, p.data)
	if err != nil {
		return hoso.AppendResult{}, err
	}
	return in.commit(ctx, p, ack)
}

// staged is an event validated against its dossier and encoded, ready to
// publish.
type staged struct {
	e    *hoso.Event
	cd   *cachedDossier // the state it was validated against
	next *cachedDossier // the state after it, cached once the event is stored
	data []byte
	// expect is the last sequence of the event's subject that the publish
	// expects: the dossier's, or its bucket's.
	expect uint64
}

// stage validates e against its dossier's state. A staged without event
// and a nil error is an id already in the dossier's history: res is the
// answer. With optimistic set, a received event for a dossier this process
// has not cached is taken to open a new dossier without reading the stream
// first: the publish expects the dossier's subject to be empty, so
// JetStream refuses it if the dossier exists after all, and the retry reads
// it. This saves a round trip per new dossier, the common case of a
// received event.
//
// In a bucketed stream the publish expects the bucket's last sequence, read
// from the dossier index before the dossier's state is taken from it (see
// dossierIndex): a cached state whose last sequence is not the index's is
// read again, and a dossier the index does not know is new.
func (in *Ingester) stage(ctx context.Context, e *hoso.Event, optimistic bool) (staged, hoso.AppendResult, error) {
	x := in.store.index
	var expect uint64
	if x != nil {
		expect = x.bucketLast(e.Dossier)
	}
	cd, ok := in.cache.get(e.Dossier)
	known := true
	if x != nil {
		var sp span
		sp, known, _ = x.lookup(e.Dossier)
		if ok && (!known || sp.last != cd.lastSeq) {
			in.cache.drop(e.Dossier)
			ok = false
		}
	}
	cached := ok
	if !ok && optimistic && e.Type == hoso.EventReceived && (x == nil || !known) {
		cd = &in.noDossier
	} else if !ok {
		var err error
		if cd, err = in.load(ctx, e.Dossier); err != nil {
			return staged{}, hoso.AppendResult{}, err
		}
	}
	var next *cachedDossier
	for {
		if x == nil {
			expect = cd.lastSeq
		}
		if seq, ok := cd.seqOf(e.ID); ok {
			res, err := in.duplicate(ctx, e, seq)
			return staged{}, res, err
		}
		next = &cachedDossier{d: cd.d}
		err := next.d.Apply(e)
		if err == nil {
			break
		}
		if !cached {
			return staged{}, hoso.AppendResult{}, err
		}
		// A cached state may be stale: another process may have appended
		// to the dossier since. The publish's expected sequence catches
		// that for an event accepted, but an event refused is never
		// published, so a refusal rests on the stream's state: read it and
		// check again (TestClusterFaults, where the two processes take
		// turns with one desk's batches, saw returned refused as "dossier
		// is processing" by a process that had not seen the resolution).
		in.cache.drop(e.Dossier)
		if cd, err = in.load(ctx, e.Dossier); err != nil {
			return staged{}, hoso.AppendResult{}, err
		}
		cached = false
	}
	stored := *e
	stored.Version = next.d.Version
	stored.RecordedAt = in.now().UTC()
	data, err := stored.MarshalStored()
	if err != nil {
		return staged{}, hoso.AppendResult{}, err
	}
	return staged{e: e, cd: cd, next: next, data: data, expect: expect}, hoso.AppendResult{}, nil
}

// commit records a published event in the cache and answers its result.
func (in *Ingester) commit(ctx context.Context, p staged, ack *jetstream.PubAck) (hoso.AppendResult, error) {
	e := p.e
	if ack.Duplicate {
		// The id is in the stream but not in this dossier's history as we
		// knew it: either our cache was stale or the id belongs elsewhere.
		in.cache.drop(e.Dossier)
		return in.duplicate(ctx, e, ack.Sequence)
	}
	in.store.stored()
	next := p.next
	next.d.LastSeq, next.lastSeq = ack.Sequence, ack.Sequence
	next.ids = make([]eventID, len(p.cd.ids), len(p.cd.ids)+1)
	copy(next.ids, p.cd.ids)
	next.ids = append(next.ids, eventID{e.ID, ack.Sequence})
	if in.store.index != nil {
		in.store.index.add(e.Dossier, ack.Sequence)
	}
	in.cache.put(e.Dossier, next)
	return hoso.AppendResult{Dossier: e.Dossier, Version: next.d.Version, Seq: ack.Sequence}, nil
}

// duplicate answers a re-sent id with the original result, or refuses an id
// that was used for a different event.
func (in *Ingester) duplicate(ctx context.Context, e *hoso.Event, seq uint64) (hoso.AppendResult, error) {
	msg, err := in.store.Msg(ctx, seq)
	if err != nil {
		return hoso.AppendResult{}, err
	}
	orig, err := msg.Event()
	if err != nil {
		return hoso.AppendResult{}, err
	}
	if orig.Dossier != e.Dossier || !hoso.SameRequest(orig, e) {
		return hoso.AppendResult{}, &hoso.Error{Code: hoso.ECONFLICT, Field: "id", Message: fmt.Sprintf(
			"id: %q was already used for a different event (seq %d, dossier %q, %s)", e.ID, orig.Seq, orig.Dossier, orig.Type)}
	}
	return hoso.AppendResult{Dossier: orig.Dossier, Version: orig.Version, Seq: orig.Seq, Duplicate: true}, nil
}

// load folds the dossier's state from the stream and caches it.
func (in *Ingester) load(ctx context.Context, code string) (*cachedDossier, error) {
	events, err := in.store.LoadDossier(ctx, code)
	if err != nil {
		return nil, err
	}
	cd := &cachedDossier{ids: make([]eventID, 0, len(events))}
	for _, ev := range events {
		if err := cd.d.Apply(ev); err != nil {
			return nil, fmt.Errorf("dossier %q in the ledger does not fold at seq %d: %w", code, ev.Seq, err)
		}
		cd.ids = append(cd.ids, eventID{ev.ID, ev.Seq})
		cd.lastSeq = ev.Seq
	}
	in.cache.put(code, cd)
	return cd, nil
}

// AppendBatch appends events in order per dossier. It works in rounds: the
// first event of every dossier in the batch, then the second of those that
// have one, and so on. Within a round every dossier is different, so all of
// the round's events are published at once without waiting for each other's
// acknowledgement, which is what makes a batch fast; an event whose dossier
// another writer changed meanwhile is retried on its own. In a bucketed
// stream the rounds are by bucket rather than dossier: two appends to one
// bucket cannot both expect its last sequence.
func (in *Ingester) AppendBatch(ctx context.Context, events []*hoso.Event) []hoso.BatchResult {
	return in.appendBatch(ctx, events, true)
}

// AppendBulk is AppendBatch for loading a history: the same validation, the
// same per-dossier order and expected last sequence, but no Msg-Id. JetStream
// keeps every Msg-Id of its duplicate window in memory (about 150 bytes an
// event), so a bulk load of millions of events through AppendBatch would hold
// them all for a day, and a restart within the window would read them all
// back. Without it a re-sent event is still recognised: the dossier's history
// holds its id, and a publish from stale state fails its expected last
// sequence, which re-reads that history. What is lost is only the detection
// of an id reused for another dossier, which the window gave for its length.
func (in *Ingester) AppendBulk(ctx context.Context, events []*hoso.Event) []hoso.BatchResult {
	return in.appendBatch(ctx, events, false)
}

func (in *Ingester) appendBatch(ctx context.Context, events []*hoso.Event, msgID bool) []hoso.BatchResult {
	results := make([]hoso.BatchResult, len(events))
	if len(events) == 1 {
		in.appendRound(ctx, events, []int{0}, results, msgID, nil)
		return results
	}
	// round[i] is how many events of events[i]'s dossier (or bucket) come
	// before it in the batch: the round it is appended in.
	round := make([]int, len(events))
	rounds := 1
	before := make(map[uint64]int, len(events))
	for i, e := range events {
		k := in.appendKey(e.Dossier)
		round[i] = before[k]
		before[k]++
		rounds = max(rounds, round[i]+1)
	}
	// The events by round, in batch order within each: a counting sort.
	start := make([]int, rounds+1)
	for _, r := range round {
		start[r+1]++
	}
	for r := range rounds {
		start[r+1] += start[r]
	}
	byRound := make([]int, len(events))
	next := slices.Clone(start[:rounds])
	for i, r := range round {
		byRound[next[r]] = i
		next[r]++
	}
	// failed holds, per dossier, the first of its events in the batch whose
	// append failed for a cause other than the event (transient: a
	// timeout, a stream without a leader or out of space), which may or
	// may not be stored. The dossier's later events are not attempted:
	// appended, they could leave it stored without it (a resolution valid
	// without the supplement received before it, once a new leader takes
	// appends), and the sender's retry of both would then be refused.
	failed := map[string]int{}
	for r := range rounds {
		idx := byRound[start[r]:start[r+1]]
		for from := 0; from < len(idx); from += in.BatchInFlight {
			in.appendRound(ctx, events, idx[from:min(from+in.BatchInFlight, len(idx))], results, msgID, failed)
		}
	}
	return results
}

// appendRound appends events[i] for every i of idx, all of different
// dossiers (buckets, in a bucketed stream), holding their stripes (taken in
// ascending order, so two rounds never deadlock) from validation until the
// acknowledgement. Each event is checked and published in turn, so that the
// server stores the first while the next are checked. An event whose
// dossier is in failed is not attempted; one that fails transiently puts
// its dossier there (failed nil: a batch of one).
func (in *Ingester) appendRound(ctx context.Context, events []*hoso.Event, idx []int, results []hoso.BatchResult, msgID bool, failed map[string]int) {
	if failed != nil {
		defer func() {
			for _, i := range idx {
				if _, ok := failed[events[i].Dossier]; !ok && transient(results[i].Err) {
					failed[events[i].Dossier] = i
				}
			}
		}()
	}
	stripes := make([]int, 0, len(idx))
	for _, i := range idx {
		stripes = append(stripes, in.stripeOf(events[i].Dossier))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		in.stripes[s].Lock()
	}
	defer func() {
		for _, s := range stripes {
			in.stripes[s].Unlock()
		}
	}()

	type inFlight struct {
		i   int
		p   staged
		fut jetstream.PubAckFuture
	}
	flights := make([]inFlight, 0, len(idx))
	for _, i := range idx {
		e := events[i]
		if j, ok := failed[e.Dossier]; ok {
			results[i].Err = hoso.Errorf(hoso.ErrorCode(results[j].Err), "not appended: event %d of this batch, for the same dossier, failed (%s) and may or may not be stored; send both again", j+1, hoso.ErrorMessage(results[j].Err))
			continue
		}
		if results[i].Err = in.prepare(ctx, e); results[i].Err != nil {
			continue
		}
		p, res, err := in.stage(ctx, e, true)
		if p.e == nil || err != nil {
			results[i] = hoso.BatchResult{Result: res, Err: err}
			continue
		}
		fut, err := in.store.publishAsync(e.Dossier, msgIDOf(e, msgID), p.expect, p.data)
		if err != nil {
			in.cache.drop(e.Dossier)
			results[i].Err = err
			continue
		}
		flights = append(flights, inFlight{i: i, p: p, fut: fut})
	}
	for _, f := range flights {
		r := &results[f.i]
		select {
		case ack := <-f.fut.Ok():
			r.Result, r.Err = in.commit(ctx, f.p, ack)
		case err := <-f.fut.Err():
			if err = in.store.publishError(f.p.e.Dossier, err); errors.Is(err, errWrongLastSeq) {
				in.cache.drop(f.p.e.Dossier)
				r.Result, r.Err = in.appendRetrying(ctx, f.p.e, msgID)
				continue
			}
			in.cache.drop(f.p.e.Dossier)
			r.Err = err
		case <-ctx.Done():
			// The publish may still land: forget what we knew of the
			// dossier so that the next append reads it again.
			in.cache.drop(f.p.e.Dossier)
			r.Err = ctx.Err()
		}
	}
}

// transient reports whether err is an append's failure for a cause other
// than the event: internal (no acknowledgement, a read that failed) or the
// ledger unavailable.
func transient(err error) bool {
	code := hoso.ErrorCode(err)
	return code == hoso.EINTERNAL || code == hoso.EUNAVAILABLE
}

// msgIDOf is the Msg-Id to publish e with: its id, or none.
func msgIDOf(e *hoso.Event, msgID bool) string {
	if msgID {
		return e.ID
	}
	return ""
}

// FindDossier folds a dossier from the stream.
func (in *Ingester) FindDossier(ctx context.Context, code string) (*hoso.DossierView, error) {
	events, err := in.store.LoadDossier(ctx, code)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, hoso.Errorf(hoso.ENOTFOUND, "dossier %q not found", code)
	}
	d, err := hoso.Fold(events)
	if err != nil {
		return nil, fmt.Errorf("dossier %q does not fold: %w", code, err)
	}
	return &hoso.DossierView{Dossier: d, Classification: d.Classify(in.now()), Events: events}, nil
}

// dossierCache bounds memory with two generations: entries not touched for
// a whole generation are dropped. Cheaper than an exact LRU, and good enough
// since a miss only costs a read from the stream.
type dossierCache struct {
	mu       sync.Mutex
	cur, old map[string]*cachedDossier
	limit    int
}

func newDossierCache(limit int) *dossierCache {
	return &dossierCache{cur: map[string]*cachedDossier{}, old: map[string]*cachedDossier{}, limit: limit}
}

func (c *dossierCache) get(code string) (*cachedDossier, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cd, ok := c.cur[code]; ok {
		return cd, true
	}
	if cd, ok := c.old[code]; ok {
		c.putLocked(code, cd)
		return cd, true
	}
	return nil, false
}

func (c *dossierCache) put(code string, cd *cachedDossier) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(code, cd)
}

func (c *dossierCache) putLocked(code string, cd *cachedDossier) {
	if len(c.cur) >= c.limit/2 {
		c.old, c.cur = c.cur, make(map[string]*cachedDossier, c.limit/2)
	}
	c.cur[code] = cd
	delete(c.old, code)
}

func (c *dossierCache) drop(code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, code)
	delete(c.old, code)
}
