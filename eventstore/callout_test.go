package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// deskDoor is a store with its tokens, the callout that makes desk
// principals NATS users, and the ingest service, as hoso serve opens them.
func deskDoor(t *testing.T) (*eventstore.Store, *eventstore.Tokens) {
	t.Helper()
	s := openStore(t)
	tokens := openTokens(t, s)
	callout := s.DeskCallout(tokens)
	if callout == nil {
		t.Fatal("the embedded server has no desk callout")
	}
	if err := callout.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { callout.Close() })
	svc := &eventstore.IngestService{Events: newIngester(t, s), Tokens: tokens}
	if err := svc.Open(s.Conn()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return s, tokens
}

// connectAs connects with opts, collecting the asynchronous errors
// (permission violations arrive that way).
func connectAs(t *testing.T, s *eventstore.Store, opts ...nats.Option) (*nats.Conn, chan error, error) {
	t.Helper()
	errs := make(chan error, 16)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, errs, err
}

// TestDeskPrincipalsAreNATSUsers: a desk principal connects with its token
// and may publish only to its own subject, so the server, not the message,
// says who sent each event; its scope holds there as over HTTP; other
// roles, bad tokens and a wrong user name are refused at connect; a
// revoked desk's open connection is refused at its next request; the
// service is still discoverable.
func TestDeskPrincipalsAreNATSUsers(t *testing.T) {
	ctx := context.Background()
	s, tokens := deskDoor(t)
	desk := hoso.Principal{Name: "desk-00127", Role: hoso.RoleDesk, Unit: "00127"}
	other := hoso.Principal{Name: "desk-00115", Role: hoso.RoleDesk, Unit: "00115"}
	sup := hoso.Principal{Name: "sup-004", Role: hoso.RoleSupervisor, Unit: "004"}
	tok := map[string]string{}
	for _, p := range []hoso.Principal{desk, other, sup} {
		token, err := tokens.CreateToken(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		tok[p.Name] = token
	}
	seq := lastSeq(t, s)

	for _, tt := range []struct {
		name string
		opt  nats.Option
		want string
	}{
		{"no credentials", nil, "Authorization Violation"},
		{"unknown token", nats.Token(eventstore.TokenPrefix + strings.Repeat("A", 43)), "Authorization Violation"},
		{"supervisor", nats.Token(tok[sup.Name]), "Authorization Violation"},
		{"another desk's name", nats.UserInfo(other.Name, tok[desk.Name]), "Authorization Violation"},
	} {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			var opts []nats.Option
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			_, _, err := connectAs(t, s, append(opts, nats.MaxReconnects(0))...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("connect: %v, want %q", err, tt.want)
			}
		})
	}

	// By user and password, the token being the password, or by token.
	nc, errs, err := connectAs(t, s, nats.UserInfo(desk.Name, tok[desk.Name]))
	if err != nil {
		t.Fatal(err)
	}
	byToken, _, err := connectAs(t, s, nats.Token(tok[desk.Name]))
	if err != nil {
		t.Fatal(err)
	}
	reply, err := nc.Request(eventstore.DeskSubject(desk.Name), []byte(received("NATS-DESK-1")), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var res hoso.AppendResult
	if err := json.Unmarshal(reply.Data, &res); err != nil || res.Seq != seq+1 {
		t.Fatalf("ingest answer %s (%v)", reply.Data, err)
	}
	if _, err := byToken.Request(eventstore.DeskSubject(desk.Name), []byte(strings.Replace(received("NATS-DESK-2"), `"dossier"`, `"by":"desk-00115","dossier"`, 1)), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	evs, err := s.LoadDossier(ctx, "NATS-DESK-1")
	if err != nil || len(evs) != 1 || evs[0].By != desk.Name {
		t.Fatalf("stored %v (%v), want one event by %s", evs, err, desk.Name)
	}
	// A `by` in the payload is refused, as over HTTP: nothing of the second.
	if evs, _ := s.LoadDossier(ctx, "NATS-DESK-2"); len(evs) != 0 {
		t.Fatalf("an event claiming its own `by` was stored: %v", evs)
	}

	// Out of scope: the answer names the unit, and nothing is stored.
	reply, err = nc.Request(eventstore.DeskSubject(desk.Name), []byte(strings.Replace(received("NATS-DESK-3"), "00127", "00115", 1)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Header.Get(micro.ErrorCodeHeader) != "403" || !strings.Contains(string(reply.Data), `"field":"unit"`) {
		t.Fatalf("out of scope: %s %s, want 403 naming unit", reply.Header.Get(micro.ErrorCodeHeader), reply.Data)
	}

	// Another desk's subject, the shared role's, the ledger's, the
	// JetStream API and the token bucket: the server refuses.
	for _, subj := range []string{eventstore.DeskSubject(other.Name), eventstore.IngestSubject, eventstore.Subject("NATS-DESK-4"),
		"$JS.API.DIRECT.GET.KV_" + eventstore.TokenBucket, "$JS.API.STREAM.INFO." + eventstore.StreamName, "$KV." + eventstore.TokenBucket + ".p.desk-00127"} {
		if err := nc.Publish(subj, []byte(received("NATS-DESK-4"))); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		wantPermissionViolation(t, errs, "publish to "+subj)
	}
	if got := lastSeq(t, s); got != seq+1 {
		t.Fatalf("last seq %d, want %d: a refused event was stored", got, seq+1)
	}

	// A desk connected by its token alone learns its subject from the server.
	if subj, err := eventstore.LearnDeskSubject(byToken, 5*time.Second); err != nil || subj != eventstore.DeskSubject(desk.Name) {
		t.Fatalf("LearnDeskSubject = %q, %v; want %s", subj, err, eventstore.DeskSubject(desk.Name))
	}

	// `nats micro ls` still finds the service, with both endpoints.
	ping, err := nc.Request("$SRV.INFO."+eventstore.ServiceName, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ping.Data), `"subject":"hoso.ingest.*"`) || !strings.Contains(string(ping.Data), `"subject":"hoso.ingest"`) {
		t.Fatalf("service info %s: want both endpoints", ping.Data)
	}

	// `nats micro stats hoso` counts the refusals (the `by` and the scope).
	stats, err := nc.Request("$SRV.STATS."+eventstore.ServiceName, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Endpoints []struct {
			Data struct {
				Errors int64 `json:"errors"`
			} `json:"data"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(stats.Data, &st); err != nil || len(st.Endpoints) != 2 || st.Endpoints[0].Data.Errors != 2 {
		t.Fatalf("service stats %s (%v): want two endpoints counting 2 errors", stats.Data, err)
	}

	// Revoked: the open connection's next request is refused.
	if err := tokens.Revoke(ctx, desk.Name); err != nil {
		t.Fatal(err)
	}
	reply, err = nc.Request(eventstore.DeskSubject(desk.Name), []byte(received("NATS-DESK-5")), 5*time.Second)
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatal(err)
	}
	if err == nil && reply.Header.Get(micro.ErrorCodeHeader) != "401" {
		t.Fatalf("revoked desk: %s %s, want 401", reply.Header.Get(micro.ErrorCodeHeader), reply.Data)
	}
	if evs, _ := s.LoadDossier(ctx, "NATS-DESK-5"); len(evs) != 0 {
		t.Fatal("a revoked desk's event was stored")
	}
	if _, _, err := connectAs(t, s, nats.Token(tok[desk.Name]), nats.MaxReconnects(0)); err == nil {
		t.Fatal("a revoked desk connected")
	}
	// Its name is never given again: a new desk cannot inherit its subject.
	if _, err := tokens.CreateToken(ctx, hoso.Principal{Name: desk.Name, Role: hoso.RoleDesk, Unit: "00115"}); hoso.ErrorCode(err) != hoso.ECONFLICT {
		t.Fatalf("re-creating a revoked name: %v, want ECONFLICT", err)
	}
}
