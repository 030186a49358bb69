//go:build faults

package eventstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/eventstore/clustertest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// The fault tests of the cluster run with the build tag faults (make
// faults): they take minutes.

// TestMain lets the test binary be a node of the cluster that
// clustertest.Start runs as its child.
func TestMain(m *testing.M) {
	clustertest.RunNodeIfChild()
	os.Exit(m.Run())
}

// clusterLedger opens the ledger's store on the cluster with three
// replicas, with the ingest service in front of it.
func clusterLedger(t *testing.T, c *clustertest.Cluster) *eventstore.Store {
	t.Helper()
	ctx := context.Background()
	var s *eventstore.Store
	var err error
	// The meta leader takes a moment to know all three peers: until then a
	// stream of three replicas finds too few.
	deadline := time.Now().Add(time.Minute)
	for {
		s, err = eventstore.Open(ctx, eventstore.Config{URL: c.ClientURLs(), Credentials: c.LedgerSeed, Replicas: 3, SubjectBuckets: testBuckets})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open the ledger on the cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { s.Close() })
	svc := &eventstore.IngestService{Events: newIngester(t, s)}
	if err := svc.Open(s.Conn()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return s
}

// TestClusterNodeKilledAndRestarted: on the cluster of deploy/nats, two desk
// systems send a simulated history through hoso.ingest while the stream's
// leader is killed with SIGKILL; they retry what was not acknowledged, and
// every event is stored exactly once. The killed node, started again on its
// store, catches up: its replica equals the other two, and reads from it as
// the stream's leader give the same ledger.
func TestClusterNodeKilledAndRestarted(t *testing.T) {
	ctx := context.Background()
	c := clustertest.Start(t)
	s := clusterLedger(t, c)
	info, err := s.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := info.CachedInfo().Config; cfg.Replicas != 3 || !cfg.DenyDelete || !cfg.DenyPurge {
		t.Fatalf("stream config %+v", cfg)
	}
	// The ledger's role keeps the deployment's principals on the cluster.
	u, _ := registry(t)
	tokens, err := s.OpenTokens(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokens.CreateToken(ctx, hoso.Principal{Name: "cluster-desk", Role: hoso.RoleDesk})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := tokens.Authenticate(ctx, tok); err != nil || p.Name != "cluster-desk" {
		t.Fatalf("authenticate on the cluster: %v %v", p, err)
	}

	u, cal := registry(t)
	lines, sum := clustertest.History(t, u, cal, 3000, 11, now)
	killAt := int64(sum.Events / 3)
	victim, seconds, senders := killLeaderWhileSending(t, c, s, lines, killAt)

	// Exactly once: as many messages as events, each id once.
	checkExactlyOnce(t, s, sum.Events)
	t.Logf("%d events from 2 senders; leader %s killed after %d; %s", sum.Events, c.Nodes[victim].Name, killAt, senderFigures(senders, seconds))

	// The killed node comes back and catches up.
	c.Restart(victim)
	c.WaitHealthy(2 * time.Minute)
	c.WaitReplicas(eventstore.StreamName, uint64(sum.Events), 2*time.Minute)
	want := streamStates(t, c)
	for i, st := range want {
		if st.Msgs != uint64(sum.Events) || st.LastSeq != uint64(sum.Events) || !sameState(st, want[0]) {
			t.Errorf("%s: replica %+v, want %d messages like %+v", c.Nodes[i].Name, st, sum.Events, want[0])
		}
	}

	// Reads served by the restarted node: make it the stream's leader.
	before := ledgerDigest(t, s)
	leadWith(t, c, s, victim)
	if after := ledgerDigest(t, s); after != before {
		t.Errorf("the ledger read through %s differs: %x, before %x", c.Nodes[victim].Name, after, before)
	}
}

// killLeaderWhileSending runs two senders and kills the stream's leader
// once the stream holds killAt events. It returns the killed node and the
// seconds the stream had no leader.
func killLeaderWhileSending(t *testing.T, c *clustertest.Cluster, s *eventstore.Store, lines [2][][]byte, killAt int64) (int, float64, [2]*clustertest.Sender) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	watch, err := clustertest.WatchLeader(c.Connect(c.LedgerSeed), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Stop() })
	var senders [2]*clustertest.Sender
	errs := make(chan error, 2)
	for i := range senders {
		senders[i] = &clustertest.Sender{Conn: c.Connect(c.DeskSeed), Lines: lines[i], Batch: 250}
		go func() { errs <- senders[i].Run(ctx) }()
	}
	victim, started := -1, time.Now()
	for victim < 0 {
		last, err := s.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if int64(last) >= killAt {
			leader, err := clustertest.StreamLeader(ctx, s.JetStream(), eventstore.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			if victim = c.Index(leader); victim < 0 {
				t.Fatalf("stream leader %q is none of the nodes", leader)
			}
			c.Kill(victim)
			t.Logf("killed %s, the stream's leader, with SIGKILL at seq %d, %v after the senders started", leader, last, time.Since(started).Round(time.Millisecond))
			break
		}
		select {
		case err := <-errs:
			t.Fatalf("a sender finished before the leader was killed: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	leaderless, leaders := watch.Stop()
	if len(leaders) < 2 || leaders[0] != c.Nodes[victim].Name {
		t.Errorf("stream leaders seen %v: want %s then another", leaders, c.Nodes[victim].Name)
	}
	return victim, leaderless.Seconds(), senders
}

// senderFigures is the line the fault tests log.
func senderFigures(senders [2]*clustertest.Sender, leaderless float64) string {
	return fmt.Sprintf("%s, seconds without a leader %.1f", clustertest.Total(senders[:]...), leaderless)
}

// checkExactlyOnce reads the whole stream: events messages, each id once.
func checkExactlyOnce(t *testing.T, s *eventstore.Store, events int64) {
	t.Helper()
	ids := make(map[string]uint64, events)
	var n int64
	err := s.Read(context.Background(), 1, false, func(le hoso.LedgerEntry) error {
		e, err := le.Event()
		if err != nil {
			return err
		}
		if prev, ok := ids[e.ID]; ok {
			return fmt.Errorf("id %q stored twice: seq %d and %d", e.ID, prev, le.Seq)
		}
		ids[e.ID] = le.Seq
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != events {
		t.Fatalf("the stream holds %d events, the history %d", n, events)
	}
}

// streamStates is every node's replica of the ledger's stream.
func streamStates(t *testing.T, c *clustertest.Cluster) []server.StreamState {
	t.Helper()
	var states []server.StreamState
	for i := range c.Nodes {
		st, err := c.StreamState(context.Background(), i, eventstore.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	return states
}

// sameState compares what a replica holds: messages, bytes, sequences and
// deletions (none: the stream denies them).
func sameState(a, b server.StreamState) bool {
	return a.Msgs == b.Msgs && a.Bytes == b.Bytes && a.FirstSeq == b.FirstSeq && a.LastSeq == b.LastSeq &&
		a.NumDeleted == b.NumDeleted && a.NumSubjects == b.NumSubjects && a.LastTime.Equal(b.LastTime)
}

// ledgerDigest hashes the whole stream in order, sequences and bytes.
func ledgerDigest(t *testing.T, s *eventstore.Store) [32]byte {
	t.Helper()
	h := sha256.New()
	err := s.Read(context.Background(), 1, false, func(le hoso.LedgerEntry) error {
		fmt.Fprintf(h, "%d %d\n", le.Seq, len(le.Data))
		h.Write(le.Data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// leadWith asks the stream's leader to step down in favour of node i, until
// node i leads.
func leadWith(t *testing.T, c *clustertest.Cluster, s *eventstore.Store, i int) {
	t.Helper()
	ctx := context.Background()
	admin := c.Connect(c.LedgerSeed)
	want := c.Nodes[i].Name
	deadline := time.Now().Add(time.Minute)
	for {
		leader, err := clustertest.StreamLeader(ctx, s.JetStream(), eventstore.StreamName)
		if err == nil && leader == want {
			return
		}
		if err == nil && leader != "" {
			body := fmt.Sprintf(`{"placement":{"preferred":%q}}`, want)
			_, _ = admin.Request(jetstream.DefaultAPIPrefix+"STREAM.LEADER.STEPDOWN."+eventstore.StreamName, []byte(body), 5*time.Second)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not lead the stream (leader %q, %v)", want, leader, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
