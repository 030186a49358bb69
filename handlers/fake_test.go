package handlers_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
)

// fakeLedger is an in-memory hoso.EventService and hoso.DossierService. It
// folds events with hoso.Dossier.Apply and recognises a re-send by its id,
// so the handlers see the answers the real ledger gives.
type fakeLedger struct {
	// failWith, if set, is returned by every call: an adapter failing.
	failWith error

	mu       sync.Mutex
	seq      uint64
	byID     map[string]*hoso.Event
	results  map[string]hoso.AppendResult
	dossiers map[string]*hoso.Dossier
	history  map[string][]*hoso.Event
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{
		byID:     map[string]*hoso.Event{},
		results:  map[string]hoso.AppendResult{},
		dossiers: map[string]*hoso.Dossier{},
		history:  map[string][]*hoso.Event{},
	}
}

func (f *fakeLedger) Append(ctx context.Context, e *hoso.Event) (hoso.AppendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.append(e)
}

func (f *fakeLedger) AppendBatch(ctx context.Context, events []*hoso.Event) []hoso.BatchResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]hoso.BatchResult, len(events))
	for i, e := range events {
		out[i].Result, out[i].Err = f.append(e)
	}
	return out
}

func (f *fakeLedger) append(in *hoso.Event) (hoso.AppendResult, error) {
	if f.failWith != nil {
		return hoso.AppendResult{}, f.failWith
	}
	e := *in
	if e.Type == hoso.EventReceived && e.Due.IsZero() {
		// Calendar days stand in for working days: the handlers do not care.
		e.Due = e.At.Add(time.Duration(e.Days * float64(24*time.Hour)))
	}
	if e.ID == "" {
		e.ID = e.DeriveID()
	}
	if stored, ok := f.byID[e.ID]; ok {
		if !hoso.SameRequest(stored, &e) {
			return hoso.AppendResult{}, hoso.Errorf(hoso.ECONFLICT, "id %q was already used for a different event", e.ID)
		}
		r := f.results[e.ID]
		r.Duplicate = true
		return r, nil
	}
	d := f.dossiers[e.Dossier]
	if d == nil {
		d = &hoso.Dossier{}
	}
	next := *d
	e.Seq = f.seq + 1
	if err := next.Apply(&e); err != nil {
		return hoso.AppendResult{}, err
	}
	f.seq++
	e.Version = next.Version
	e.ExpectedVersion = nil
	f.dossiers[e.Dossier] = &next
	f.byID[e.ID] = &e
	f.history[e.Dossier] = append(f.history[e.Dossier], &e)
	r := hoso.AppendResult{Dossier: e.Dossier, Version: e.Version, Seq: e.Seq}
	f.results[e.ID] = r
	return r, nil
}

func (f *fakeLedger) FindDossier(ctx context.Context, code string) (*hoso.DossierView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return nil, f.failWith
	}
	d, ok := f.dossiers[code]
	if !ok {
		return nil, hoso.Errorf(hoso.ENOTFOUND, "dossier %q not found", code)
	}
	c := *d
	return &hoso.DossierView{
		Dossier:        &c,
		Classification: c.Classify(time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)),
		Events:         slices.Clone(f.history[code]),
	}, nil
}
