package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/handlers"
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

// fakeTokens is an in-memory hoso.TokenService whose token is "tok-" and
// the principal's name.
type fakeTokens struct {
	mu sync.Mutex
	ps map[string]hoso.Principal
}

// The principals every test server knows; authHeader picks one by route.
var (
	nationalDesk    = hoso.Principal{Name: "desk", Role: hoso.RoleDesk}
	nationalAuditor = hoso.Principal{Name: "auditor", Role: hoso.RoleAuditor}
	theAdmin        = hoso.Principal{Name: "admin", Role: hoso.RoleAdmin}
)

func newFakeTokens(ps ...hoso.Principal) *fakeTokens {
	f := &fakeTokens{ps: map[string]hoso.Principal{}}
	for _, p := range append([]hoso.Principal{nationalDesk, nationalAuditor, theAdmin}, ps...) {
		f.ps[p.Name] = p
	}
	return f
}

func bearer(p hoso.Principal) string { return "Bearer tok-" + p.Name }

func (f *fakeTokens) CreateToken(ctx context.Context, p hoso.Principal) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ps[p.Name]; ok {
		return "", hoso.Errorf(hoso.ECONFLICT, "name: %q exists", p.Name)
	}
	f.ps[p.Name] = p
	return "tok-" + p.Name, nil
}

func (f *fakeTokens) Authenticate(ctx context.Context, token string) (*hoso.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, ok := strings.CutPrefix(token, "tok-")
	p, found := f.ps[name]
	if !ok || !found {
		return nil, hoso.Errorf(hoso.EUNAUTHORIZED, "unknown token")
	}
	return &p, nil
}

func (f *fakeTokens) Principal(ctx context.Context, name string) (*hoso.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ps[name]
	if !ok {
		return nil, hoso.Errorf(hoso.ENOTFOUND, "no principal %q", name)
	}
	return &p, nil
}

func (f *fakeTokens) Principals(ctx context.Context) ([]hoso.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hoso.Principal
	for _, p := range f.ps {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b hoso.Principal) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (f *fakeTokens) Revoke(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ps[name]; !ok {
		return hoso.Errorf(hoso.ENOTFOUND, "no principal %q", name)
	}
	delete(f.ps, name)
	return nil
}

// authHeader is the Authorization a test request carries unless it sets
// its own: the national desk's for posting events, the admin's for
// tokens, the national auditor's for the rest.
func authHeader(method, path string) string {
	switch {
	case method == "POST" && strings.HasPrefix(path, "/v1/events"):
		return bearer(nationalDesk)
	case strings.HasPrefix(path, "/v1/tokens"):
		return bearer(theAdmin)
	}
	return bearer(nationalAuditor)
}

// authorize gives s the test principals and the registry to scope them.
func authorize(t testing.TB, s *handlers.Server, ps ...hoso.Principal) *fakeTokens {
	t.Helper()
	units, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	tokens := newFakeTokens(ps...)
	s.Tokens, s.Units = tokens, units
	return tokens
}

// authedRequest is httptest.NewRequest carrying authHeader's token.
func authedRequest(method, target string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	req.Header.Set("Authorization", authHeader(method, target))
	return req
}
