package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	for _, f := range []string{s.DeskCredentials(), s.LedgerCredentials()} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}
