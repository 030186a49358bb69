package eventstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Ingester validates events against the units registry, the working calendar
// and the dossier's state, and appends them to the store. It is the one
// implementation of hoso.EventService behind both doors.
type Ingester struct {
	store    *Store
	units    *hoso.Units
	calendar *hoso.Calendar
	now      hoso.Clock

	// BatchConcurrency bounds how many dossiers of one batch are appended
	// at once; each dossier's events stay in order.
	BatchConcurrency int
	// MaxRetries bounds re-reads after another writer won a race.
	MaxRetries int

	// stripes serialise appends to one dossier inside this process, so
	// concurrent requests for it do not race each other through the stream.
	stripes [1024]sync.Mutex
	seed    maphash.Seed
	cache   *dossierCache
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
		BatchConcurrency: 64, MaxRetries: 8,
		seed: maphash.MakeSeed(), cache: newDossierCache(200_000),
	}
}

// cachedDossier is the folded state of a dossier as of its last message on
// the stream. It may be stale when another process appended since; the
// stream's expected-last-subject-sequence check catches that.
type cachedDossier struct {
	d       hoso.Dossier
	lastSeq uint64
	ids     map[string]hoso.AppendResult
}

// Append validates and appends one event.
func (in *Ingester) Append(ctx context.Context, e *hoso.Event) (hoso.AppendResult, error) {
	if err := in.prepare(e); err != nil {
		return hoso.AppendResult{}, err
	}
	mu := &in.stripes[maphash.String(in.seed, e.Dossier)%uint64(len(in.stripes))]
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		res, err := in.appendLocked(ctx, e)
		if !errors.Is(err, errWrongLastSeq) {
			return res, err
		}
		// Another writer appended to this dossier: re-read, re-validate.
		in.cache.drop(e.Dossier)
		if attempt >= in.MaxRetries {
			return hoso.AppendResult{}, hoso.Errorf(hoso.ECONFLICT,
				"dossier %q: concurrent writers kept winning after %d attempts; retry", e.Dossier, attempt+1)
		}
	}
}

// prepare checks what does not depend on the dossier's state and fills in
// the derived fields: the id and the due computed from days.
func (in *Ingester) prepare(e *hoso.Event) error {
	if err := e.CheckClock(in.now()); err != nil {
		return err
	}
	if _, ok := in.units.At(e.Unit, e.At); !ok {
		return hoso.FieldErrorf("unit", "unknown unit %q on %s", e.Unit, e.At.In(hoso.VietnamZone).Format(time.DateOnly))
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

func (in *Ingester) appendLocked(ctx context.Context, e *hoso.Event) (hoso.AppendResult, error) {
	cd, err := in.dossier(ctx, e.Dossier)
	if err != nil {
		return hoso.AppendResult{}, err
	}
	if res, ok := cd.ids[e.ID]; ok {
		return in.duplicate(ctx, e, res.Seq)
	}
	next := cd.d
	if err := next.Apply(e); err != nil {
		return hoso.AppendResult{}, err
	}
	stored := *e
	stored.Version = next.Version
	stored.RecordedAt = in.now().UTC()
	data, err := stored.MarshalStored()
	if err != nil {
		return hoso.AppendResult{}, err
	}
	ack, err := in.store.publish(ctx, e.Dossier, e.ID, cd.lastSeq, data)
	if err != nil {
		return hoso.AppendResult{}, err
	}
	if ack.Duplicate {
		// The id is in the stream but not in this dossier's history as we
		// knew it: either our cache was stale or the id belongs elsewhere.
		in.cache.drop(e.Dossier)
		return in.duplicate(ctx, e, ack.Sequence)
	}
	res := hoso.AppendResult{Dossier: e.Dossier, Version: next.Version, Seq: ack.Sequence}
	next.LastSeq = ack.Sequence
	updated := &cachedDossier{d: next, lastSeq: ack.Sequence, ids: make(map[string]hoso.AppendResult, len(cd.ids)+1)}
	for k, v := range cd.ids {
		updated.ids[k] = v
	}
	updated.ids[e.ID] = res
	in.cache.put(e.Dossier, updated)
	return res, nil
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

// dossier returns the dossier's state, from the cache or the stream.
func (in *Ingester) dossier(ctx context.Context, code string) (*cachedDossier, error) {
	if cd, ok := in.cache.get(code); ok {
		return cd, nil
	}
	events, err := in.store.LoadDossier(ctx, code)
	if err != nil {
		return nil, err
	}
	cd := &cachedDossier{ids: make(map[string]hoso.AppendResult, len(events))}
	for _, ev := range events {
		if err := cd.d.Apply(ev); err != nil {
			return nil, fmt.Errorf("dossier %q in the ledger does not fold at seq %d: %w", code, ev.Seq, err)
		}
		cd.ids[ev.ID] = hoso.AppendResult{Dossier: code, Version: ev.Version, Seq: ev.Seq}
		cd.lastSeq = ev.Seq
	}
	in.cache.put(code, cd)
	return cd, nil
}

// AppendBatch appends events in order per dossier, several dossiers at once.
func (in *Ingester) AppendBatch(ctx context.Context, events []*hoso.Event) []hoso.BatchResult {
	results := make([]hoso.BatchResult, len(events))
	groups := make(map[string][]int)
	var order []string
	for i, e := range events {
		if _, ok := groups[e.Dossier]; !ok {
			order = append(order, e.Dossier)
		}
		groups[e.Dossier] = append(groups[e.Dossier], i)
	}
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(in.BatchConcurrency, len(order)) {
		wg.Go(func() {
			for idx := range work {
				for _, i := range idx {
					results[i].Result, results[i].Err = in.Append(ctx, events[i])
				}
			}
		})
	}
	for _, code := range order {
		work <- groups[code]
	}
	close(work)
	wg.Wait()
	return results
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
