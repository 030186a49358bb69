package eventstore_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hoso-ledger/hoso/eventstore"
)

// Two embedded servers on one data directory would corrupt its JetStream
// files: the second Open is refused with a clear error, and the directory
// is free again once the first closes.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	cfg := eventstore.Config{DataDir: dir, Listen: "127.0.0.1:0"}
	first, err := eventstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = eventstore.Open(context.Background(), cfg)
	if !errors.Is(err, eventstore.ErrDataDirInUse) {
		first.Close()
		t.Fatalf("second Open on the same directory: got %v, want ErrDataDirInUse", err)
	}
	if want := "process " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--nats-url") {
		t.Errorf("error %q should name %q and the way out (--nats-url)", err, want)
	}
	readOnly := cfg
	readOnly.ReadOnly = true
	if _, err := eventstore.Open(context.Background(), readOnly); !errors.Is(err, eventstore.ErrDataDirInUse) {
		t.Errorf("read-only Open (hoso verify --data) while the server runs: got %v, want ErrDataDirInUse", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := eventstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open after the first closed: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}
