package eventstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// deskConn connects with the desk credentials, collecting the server's
// asynchronous errors (permission violations arrive that way).
func deskConn(t *testing.T, s *eventstore.Store) (*nats.Conn, chan error) {
	t.Helper()
	auth, err := nats.NkeyOptionFromSeed(s.DeskCredentials())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(s.ClientURL(), auth, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func wantPermissionViolation(t *testing.T, errs chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "Permissions Violation") {
			t.Errorf("%s: %v, want a permissions violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: no permissions violation", what)
	}
}

func TestDeskRole(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	svc := &eventstore.IngestService{Events: newIngester(t, s)}
	if err := svc.Open(s.Conn()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	nc, errs := deskConn(t, s)

	// Can ingest.
	reply, err := nc.Request(eventstore.IngestSubject, []byte(received("DESK-1")), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var res hoso.AppendResult
	if err := json.Unmarshal(reply.Data, &res); err != nil || res.Seq != 1 {
		t.Fatalf("ingest answer %s (%v)", reply.Data, err)
	}

	// Cannot write to the ledger's subjects directly.
	if err := nc.Publish(eventstore.Subject("DESK-2"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	wantPermissionViolation(t, errs, "publish to hoso.events")

	// Cannot reach the JetStream API: no delete, purge or edit of the stream.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := js.DeleteStream(short, eventstore.StreamName); err == nil {
		t.Error("desk deleted the stream")
	}
	wantPermissionViolation(t, errs, "delete the stream")
	short2, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if _, err := js.UpdateStream(short2, jetstream.StreamConfig{Name: eventstore.StreamName, Subjects: []string{">"}}); err == nil {
		t.Error("desk edited the stream")
	}
	wantPermissionViolation(t, errs, "edit the stream")
	if err := nc.Publish("$JS.API.STREAM.MSG.DELETE."+eventstore.StreamName, []byte(`{"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	wantPermissionViolation(t, errs, "delete a message")

	// Nothing changed: one event, the stream's configuration intact.
	info, err := s.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State.Msgs != 1 || !st.Config.DenyDelete || !st.Config.DenyPurge || len(st.Config.Subjects) != 1 {
		t.Errorf("stream changed: %d messages, config %+v", st.State.Msgs, st.Config)
	}
}

func TestServerRequiresCredentials(t *testing.T) {
	s := openStore(t)
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	for _, f := range []string{s.DeskCredentials(), s.LedgerCredentials(), filepath.Join(filepath.Dir(s.LedgerCredentials()), eventstore.CalloutKeyFile)} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

// An external server set up as docs/security.md says: the ledger's role with
// LedgerPermissions can append, read, keep checkpoints and serve ingest; the
// desk role can ingest.
func TestExternalServerWithLedgerPermissions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ledgerKP, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	deskKP, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seedFile := func(kp nkeys.KeyPair, name string) (string, string) {
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		return path, pub
	}
	ledgerFile, ledgerPub := seedFile(ledgerKP, "ledger.nk")
	deskFile, deskPub := seedFile(deskKP, "desk.nk")
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "js"), NoSigs: true,
		Nkeys: []*server.NkeyUser{
			{Nkey: ledgerPub, Permissions: eventstore.LedgerPermissions()},
			{Nkey: deskPub, Permissions: eventstore.DeskPermissions()},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	s, err := eventstore.Open(ctx, eventstore.Config{URL: srv.ClientURL(), Credentials: ledgerFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The ledger's role keeps the principals in the token bucket too.
	u, _ := registry(t)
	tokens, err := s.OpenTokens(ctx, u, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	token, err := tokens.CreateToken(ctx, hoso.Principal{Name: "desk-long-bien", Role: hoso.RoleDesk, Unit: "004"})
	if err != nil {
		t.Fatal(err)
	}
	svc := &eventstore.IngestService{Events: newIngester(t, s), Tokens: tokens}
	if err := svc.Open(s.Conn()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })

	auth, err := nats.NkeyOptionFromSeed(deskFile)
	if err != nil {
		t.Fatal(err)
	}
	desk, err := nats.Connect(srv.ClientURL(), auth)
	if err != nil {
		t.Fatal(err)
	}
	defer desk.Close()
	for i, js := range []string{received("EXT-1"), `{"type":"transferred","dossier":"EXT-1","unit":"00127","to_unit":"004","at":"2024-03-01T10:00:00+07:00"}`} {
		msg := nats.NewMsg(eventstore.IngestSubject)
		msg.Header.Set("Authorization", "Bearer "+token)
		msg.Data = []byte(js)
		reply, err := desk.RequestMsg(msg, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var res hoso.AppendResult
		if err := json.Unmarshal(reply.Data, &res); err != nil || res.Seq != uint64(i+1) {
			t.Fatalf("ingest answer %s (%v)", reply.Data, err)
		}
	}
	entries, err := s.ReadDossier(ctx, "EXT-1")
	if err != nil || len(entries) != 2 || entries[1].Seq != 2 {
		t.Fatalf("read dossier: %d entries %v", len(entries), err)
	}
	if !bytes.Contains(entries[1].Data, []byte(`"by":"desk-long-bien"`)) {
		t.Fatalf("stored event without its submitter: %s", entries[1].Data)
	}
	// Without a token the NATS door refuses, naming what is missing.
	reply, err := desk.Request(eventstore.IngestSubject, []byte(received("EXT-2")), 5*time.Second)
	if err != nil || reply.Header.Get("Nats-Service-Error-Code") != "401" || !bytes.Contains(reply.Data, []byte("bearer token")) {
		t.Fatalf("no token: %v %s (%v)", reply.Header, reply.Data, err)
	}
	var seen []uint64
	if err := s.Read(ctx, 1, false, func(e hoso.LedgerEntry) error { seen = append(seen, e.Seq); return nil }); err != nil || len(seen) != 2 {
		t.Fatalf("read: %v %v", seen, err)
	}
	if err := s.AppendCheckpoint(ctx, 2, []byte("note")); err != nil {
		t.Fatal(err)
	}
	var notes int
	if err := s.ReadCheckpoints(ctx, func(hoso.CheckpointEntry) error { notes++; return nil }); err != nil || notes != 1 {
		t.Fatalf("checkpoints: %d %v", notes, err)
	}
}
