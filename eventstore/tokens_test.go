package eventstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

func openTokens(t testing.TB, s *eventstore.Store) *eventstore.Tokens {
	t.Helper()
	u, _ := registry(t)
	tok, err := s.OpenTokens(context.Background(), u, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// TestTokens: a token authenticates its principal until it is revoked,
// in every process of the deployment; names are unique; bad principals
// are refused naming the field; nothing secret is listed or stored.
func TestTokens(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a := openTokens(t, s)

	// A second process of the deployment: its own connection, its own Tokens.
	other, err := eventstore.Open(ctx, eventstore.Config{URL: s.ClientURL(), Credentials: s.LedgerCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	b := openTokens(t, other)

	desk := hoso.Principal{Name: "desk-00127", Role: hoso.RoleDesk, Unit: "00127"}
	token, err := a.CreateToken(ctx, desk)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, eventstore.TokenPrefix) || len(token) != len(eventstore.TokenPrefix)+43 {
		t.Fatalf("token %q: want %s and 43 base64url characters (256 bits)", token, eventstore.TokenPrefix)
	}
	for name, svc := range map[string]*eventstore.Tokens{"creator": a, "other process": b} {
		p, err := svc.Authenticate(ctx, token)
		if err != nil || *p != desk {
			t.Fatalf("%s: Authenticate = %v, %v; want %v", name, p, err, desk)
		}
		if p, err := svc.Principal(ctx, desk.Name); err != nil || *p != desk {
			t.Fatalf("%s: Principal = %v, %v; want %v", name, p, err, desk)
		}
	}
	if _, err := b.CreateToken(ctx, hoso.Principal{Name: "desk-00127", Role: hoso.RoleSupervisor}); hoso.ErrorCode(err) != hoso.ECONFLICT {
		t.Fatalf("same name again: %v, want ECONFLICT", err)
	}
	for _, tt := range []struct {
		p     hoso.Principal
		field string
	}{
		{hoso.Principal{Name: "", Role: hoso.RoleDesk, Unit: "00127"}, "name"},
		{hoso.Principal{Name: "a b", Role: hoso.RoleDesk, Unit: "00127"}, "name"},
		{hoso.Principal{Name: "hoso", Role: hoso.RoleDesk, Unit: "00127"}, "name"},
		{hoso.Principal{Name: "x", Role: "root", Unit: "00127"}, "role"},
		{hoso.Principal{Name: "x", Role: hoso.RoleDesk, Unit: "99999"}, "unit"},
		{hoso.Principal{Name: "x", Role: hoso.RoleAdmin, Unit: "01"}, "unit"},
	} {
		_, err := a.CreateToken(ctx, tt.p)
		if hoso.ErrorCode(err) != hoso.EINVALID || !strings.HasPrefix(hoso.ErrorMessage(err), tt.field+":") {
			t.Errorf("CreateToken(%+v) = %v, want EINVALID naming %s", tt.p, err, tt.field)
		}
	}
	sup := hoso.Principal{Name: "sup-hanoi", Role: hoso.RoleSupervisor, Unit: "01"}
	if _, err := b.CreateToken(ctx, sup); err != nil {
		t.Fatal(err)
	}
	list, err := a.Principals(ctx)
	if err != nil || len(list) != 2 || list[0] != desk || list[1] != sup {
		t.Fatalf("Principals = %v, %v; want [%v %v]", list, err, desk, sup)
	}

	for _, bad := range []string{"", "hoso_", token + "x", strings.ToUpper(token), "Bearer " + token} {
		if _, err := a.Authenticate(ctx, bad); hoso.ErrorCode(err) != hoso.EUNAUTHORIZED {
			t.Errorf("Authenticate(%q) = %v, want EUNAUTHORIZED", bad, err)
		}
	}

	// The bucket holds no token, only hashes.
	kv, err := s.JetStream().KeyValue(ctx, eventstore.TokenBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, token[len(eventstore.TokenPrefix):]) || strings.Contains(string(e.Value()), token[len(eventstore.TokenPrefix):]) {
			t.Fatalf("key %s holds the token itself", k)
		}
	}

	// Revoked in one process: refused there at once, and by the other as
	// soon as the bucket's watch brings the change.
	if err := a.Revoke(ctx, "desk-00127"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, token); hoso.ErrorCode(err) != hoso.EUNAUTHORIZED {
		t.Fatalf("revoked token, revoking process: %v, want EUNAUTHORIZED", err)
	}
	waitRefused(t, b, token)
	if err := b.Revoke(ctx, "desk-00127"); hoso.ErrorCode(err) != hoso.ENOTFOUND {
		t.Fatalf("revoke twice: %v, want ENOTFOUND", err)
	}
	// The name is never given again: events carry it in `by`, and a desk's
	// NATS subject is its name.
	if _, err := b.CreateToken(ctx, desk); hoso.ErrorCode(err) != hoso.ECONFLICT {
		t.Fatalf("re-create a revoked name: %v, want ECONFLICT", err)
	}
	if _, err := a.Authenticate(ctx, token); hoso.ErrorCode(err) != hoso.EUNAUTHORIZED {
		t.Fatalf("old token after re-create: %v", err)
	}
	if _, err := b.Principal(ctx, "desk-00127"); hoso.ErrorCode(err) != hoso.ENOTFOUND {
		t.Fatalf("Principal of a revoked name: %v, want ENOTFOUND", err)
	}
	if ps, err := b.Principals(ctx); err != nil || slices.ContainsFunc(ps, func(p hoso.Principal) bool { return p.Name == "desk-00127" }) {
		t.Fatalf("Principals = %v, %v: a revoked principal listed", ps, err)
	}
}

// TestDeskCannotReadTokens: the desk role's NATS permissions give it no
// way into the token bucket.
func TestDeskCannotReadTokens(t *testing.T) {
	s := openStore(t)
	openTokens(t, s)
	nc, errs := deskConn(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.KeyValue(ctx, eventstore.TokenBucket); err == nil {
		t.Fatal("a desk opened the token bucket")
	}
	wantPermissionViolation(t, errs, "desk reading the token bucket")
	if _, err := nc.Request("$KV."+eventstore.TokenBucket+".p.admin", nil, time.Second); err == nil {
		t.Fatal("a desk read a key of the token bucket")
	}
}

// waitRefused polls until svc refuses token, for at most 10 s.
func waitRefused(t *testing.T, svc *eventstore.Tokens, token string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := svc.Authenticate(context.Background(), token)
		if hoso.ErrorCode(err) == hoso.EUNAUTHORIZED {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still authenticates after 10 s: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTokensFromMemory: tokens are served from memory once the watch has
// brought them, and a token made by another process is accepted before
// its own watch has (it falls back to the bucket).
func TestTokensFromMemory(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a := openTokens(t, s)
	if !a.None() {
		t.Fatal("a new bucket: None is false")
	}
	token, err := a.CreateToken(ctx, hoso.Principal{Name: "sup", Role: hoso.RoleSupervisor, Unit: "004"})
	if err != nil {
		t.Fatal(err)
	}
	if a.None() {
		t.Fatal("a token made: None is still true")
	}
	// A process that starts later knows every token from its first request.
	b := openTokens(t, s)
	if b.None() {
		t.Fatal("a later process: None is true with a token in the bucket")
	}
	if p, err := b.Authenticate(ctx, token); err != nil || p.Name != "sup" {
		t.Fatalf("late process: %v %v", p, err)
	}
	// Closed, a Tokens trusts nothing from memory: it reads the bucket.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, "sup"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, token); hoso.ErrorCode(err) != hoso.EUNAUTHORIZED {
		t.Fatalf("closed watch, revoked token: %v, want EUNAUTHORIZED", err)
	}
}

// BenchmarkAuthenticate: what checking a token costs a request, from
// memory (every request once the watch has the token), what knowing a
// desk by its NATS subject costs, and, for comparison, reading the bucket
// (a token not yet in memory).
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	u, _ := registry(b)
	tok, err := s.OpenTokens(ctx, u, func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tok.Close() })
	token, err := tok.CreateToken(ctx, hoso.Principal{Name: "desk", Role: hoso.RoleDesk, Unit: "004"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("memory", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tok.Authenticate(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What a request on a desk's own NATS subject costs: its name looked up.
	b.Run("desk-subject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tok.Principal(ctx, "desk"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bucket", func(b *testing.B) {
		stopped, err := s.OpenTokens(ctx, u, func() time.Time { return now })
		if err != nil {
			b.Fatal(err)
		}
		stopped.Close() // a stopped watch reads the bucket every time
		for b.Loop() {
			if _, err := stopped.Authenticate(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
}
