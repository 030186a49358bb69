//go:build faults

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/eventstore/clustertest"
)

// TestClusterRestore restores the backup of a stopped single-server ledger
// into a fresh three-node cluster with three replicas: the cluster then
// verifies against the checkpoint an auditor kept of the original, its
// three replicas of each stream are equal, its latest checkpoint is the
// backup's, and a hoso process on it, with the original's signing key,
// gives the same report as the original ledger.
func TestClusterRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k := simulatedKeptLedger(t, dir)
	m, last, kept, keptFile, before := k.m, k.last, k.kept, k.file, k.report
	data := m.Config.DataDir
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup")
	if out, errOut, err := runCmd(t, "", "backup", "--data", data, backup); err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}

	c := clustertest.Start(t)
	c.WaitHealthy(time.Minute)
	// The meta leader takes a moment to know all three peers: until then
	// streams of three replicas find too few peers, and restore stops
	// before it writes anything into them.
	var out, errOut string
	var err error
	var start time.Time
	deadline := time.Now().Add(time.Minute)
	for {
		start = time.Now()
		out, errOut, err = runCmd(t, "", "restore", "--nats-url", c.ClientURLs(), "--nats-creds", c.LedgerSeed, "--replicas", "3", backup)
		placement := err != nil && (strings.Contains(err.Error(), "insufficient resources") || strings.Contains(err.Error(), "no suitable peers for placement"))
		if !placement || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, "ok: ") {
		t.Fatalf("restore into the cluster: %v\n%s%s", err, out, errOut)
	}
	t.Logf("hoso restore of %d events into the cluster, 3 replicas, in %.1f s:\n%s", last, time.Since(start).Seconds(), out)

	if out, err := verify(t, "--nats-url", c.ClientURLs(), "--nats-creds", c.LedgerSeed,
		"--key", filepath.Join(data, "checkpoint.key.pub"), "--checkpoint", keptFile); err != nil {
		t.Fatalf("hoso verify on the cluster: %v\n%s", err, out)
	}

	// Every node holds the same replica of both streams, once each is
	// current.
	c.WaitHealthy(time.Minute)
	for _, stream := range []string{eventstore.StreamName, eventstore.CheckpointStreamName} {
		var states []string
		deadline := time.Now().Add(time.Minute)
		for {
			states = states[:0]
			for i := range c.Nodes {
				st, err := c.StreamState(ctx, i, stream)
				if err != nil {
					t.Fatal(err)
				}
				states = append(states, fmt.Sprintf("%d messages, %d bytes, seq %d-%d", st.Msgs, st.Bytes, st.FirstSeq, st.LastSeq))
			}
			if states[0] == states[1] && states[1] == states[2] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: replicas differ: %q", stream, states)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s on each of the 3 nodes: %s", stream, states[0])
		if stream == eventstore.StreamName && !strings.HasPrefix(states[0], fmt.Sprintf("%d messages,", last)) {
			t.Fatalf("%s: %s, want the backup's %d events", stream, states[0], last)
		}
	}

	// A hoso process on the cluster with the original's signing key.
	restored := filepath.Join(dir, "restored")
	if err := os.Mkdir(restored, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"checkpoint.key", "checkpoint.key.pub"} {
		b, err := os.ReadFile(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(restored, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := NewMain()
	r.Config.DataDir = restored
	r.Config.HTTPAddr = "127.0.0.1:0"
	r.Config.NATSURL = c.ClientURLs()
	r.Config.NATSCredentials = c.LedgerSeed
	r.Config.Replicas = 3
	r.Config.CheckpointEvery = 100
	r.Config.DeadlineInterval = 0
	r.Config.LogLevel = "error"
	r.Now = func() time.Time { return testNow }
	if err := r.Open(ctx); err != nil {
		t.Fatalf("hoso on the restored cluster: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	if r.Store.Buckets() != 16 {
		t.Fatalf("restored stream in %d buckets, want the backup's 16", r.Store.Buckets())
	}
	waitCaughtUp(t, r)
	cp, err := r.Transparency.LatestCheckpoint(ctx)
	if err != nil || cp.Size != kept.Size || !bytes.Equal(cp.Root, kept.Root) || cp.Origin != kept.Origin {
		t.Fatalf("latest checkpoint on the cluster %d %x %q (%v), want %d %x %q", cp.Size, cp.Root, cp.Origin, err, kept.Size, kept.Root, kept.Origin)
	}
	if after := wardReport(t, r); !reflect.DeepEqual(after, before) {
		a, _ := json.Marshal(after)
		b, _ := json.Marshal(before)
		t.Fatalf("report on the cluster differs:\n%s\nwant\n%s", a, b)
	}
}
