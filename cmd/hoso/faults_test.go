//go:build faults

package main

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/eventstore/clustertest"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/nats-io/nats.go"
)

// TestMain lets the test binary be a node of a test cluster
// (clustertest) or a whole `hoso serve` process (hosoChildEnv), each a
// child that a test can kill with SIGKILL.
func TestMain(m *testing.M) {
	clustertest.RunNodeIfChild()
	runHosoIfChild()
	os.Exit(m.Run())
}

// hosoChildEnv carries a child's command line, as JSON.
const hosoChildEnv = "HOSO_TEST_CHILD_ARGS"

// runHosoIfChild runs the binary's command line and exits if this process
// was started as a hoso child. It stops as on SIGTERM when its standard
// input closes, so that it never outlives the test.
func runHosoIfChild() {
	spec := os.Getenv(hosoChildEnv)
	if spec == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := run(ctx, args, strings.NewReader(""), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hoso:", err)
		os.Exit(exitCode(err))
	}
	os.Exit(0)
}

// hosoProcess is `hoso serve` in a child process of the test binary.
type hosoProcess struct {
	t     *testing.T
	args  []string
	log   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	// http is the base URL it serves, read from its log.
	http string
}

// startHoso starts `hoso serve args…` (with --log-format json) and waits
// until it serves; it is stopped when the test ends.
func startHoso(t *testing.T, log string, args ...string) *hosoProcess {
	t.Helper()
	p := &hosoProcess{t: t, args: append([]string{"serve", "--log-format", "json"}, args...), log: log}
	p.start()
	t.Cleanup(func() {
		if p.cmd == nil {
			return
		}
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(time.Minute):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("hoso serve log %s (end):\n%s", p.log, tailFile(p.log, 40))
		}
	})
	return p
}

func (p *hosoProcess) start() {
	p.t.Helper()
	spec, _ := json.Marshal(p.args)
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), hosoChildEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = f, f
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd, p.done, p.http = cmd, make(chan struct{}), ""
	done := p.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for p.http == "" {
		p.http = servingURL(p.log)
		if p.http != "" {
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("hoso serve exited before serving:\n%s", tailFile(p.log, 40))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("hoso serve not serving after 3 minutes:\n%s", tailFile(p.log, 40))
		}
	}
}

// kill kills the process with SIGKILL: no drain, no last commit, no close.
func (p *hosoProcess) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// servingURL finds the HTTP address in a JSON log's "hoso serving" record.
func servingURL(log string) string {
	f, err := os.Open(log)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg  string `json:"msg"`
			HTTP string `json:"http"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "hoso serving" {
			return rec.HTTP
		}
	}
	return ""
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitReadyz polls a process's /readyz until it answers 200.
func waitReadyz(t *testing.T, base string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 within %v (%v)", base, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appliedSeqOf reads the sequence a read model file has committed, as
// another process may while its owner runs.
func appliedSeqOf(t *testing.T, dataDir string) uint64 {
	t.Helper()
	path := readModelPath(dataDir)
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	err = db.QueryRow(`SELECT value FROM meta WHERE key = 'applied_seq'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0
	}
	if err != nil {
		return 0 // not yet migrated
	}
	n, _ := strconv.ParseUint(v, 10, 64)
	return n
}

// clusterMain opens a whole hoso process in this one on the cluster, as
// --nats-url and the ledger's credentials configure it.
func clusterMain(t *testing.T, c *clustertest.Cluster, dir string) *Main {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m := NewMain()
		m.Config.DataDir = dir
		m.Config.HTTPAddr = "127.0.0.1:0"
		m.Config.NATSURL = c.ClientURLs()
		m.Config.NATSCredentials = c.LedgerSeed
		m.Config.NATSCalloutKey = c.CalloutSeed
		m.Config.Replicas = 3
		m.Config.DeadlineInterval = 0 // the stream is counted event by event below
		m.Config.LogLevel = "warn"
		err := m.Open(context.Background())
		if err == nil {
			t.Cleanup(func() { m.Close() })
			return m
		}
		// The meta leader takes a moment to know all three peers: until
		// then streams of three replicas find too few.
		if time.Now().After(deadline) {
			t.Fatalf("hoso on the cluster: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterFaults is the ledger on the three-node cluster of deploy/nats
// with two whole hoso processes: B in this process, A a child. Two desk
// systems send about 50,000 events of simulated history, answered by
// either process: one as a NATS user of its own (the servers' callout, which
// A and B answer, let it in by its token), on hoso.ingest.<its name>, the
// other as the shared desk role on hoso.ingest with its token in a header. A third of the way in, the
// stream's leader is killed with SIGKILL; two thirds in, A is killed with
// SIGKILL while it projects. The senders retry what was not acknowledged.
// Then the node and A are started again. Afterwards every event is in the
// stream exactly once, the three replicas are equal, hoso verify passes on
// the cluster, and A's and B's read models give the same reports, equal to
// the simulator's own counts.
func TestClusterFaults(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := clustertest.Start(t)
	b := clusterMain(t, c, filepath.Join(dir, "b"))
	token := tokenOf(t, b, testDesk)
	dirA := filepath.Join(dir, "a")
	a := startHoso(t, filepath.Join(dir, "a.log"), "--data", dirA, "--http", "127.0.0.1:0",
		"--nats-url", c.ClientURLs(), "--nats-creds", c.LedgerSeed, "--nats-callout-key", c.CalloutSeed, "--replicas", "3",
		"--deadline-interval", "0", "--tamper-evidence=false")
	waitReadyz(t, a.http, time.Minute)

	units, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	cal, err := hoso.NewCalendar()
	if err != nil {
		t.Fatal(err)
	}
	lines, sum := clustertest.History(t, units, cal, 16_200, 15, time.Now())
	t.Logf("simulated %d dossiers, %d events", sum.Dossiers, sum.Events)
	watch, err := clustertest.WatchLeader(c.Connect(c.LedgerSeed), eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Stop() })
	sendCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	var senders [2]*clustertest.Sender
	errs := make(chan error, 2)
	start := time.Now()
	// The two ways a desk sends: as a NATS user of its own, its token
	// checked once by the servers' callout (answered by A or B) and its
	// subject naming it; and as the shared desk role, its token in every
	// request.
	senders[0] = &clustertest.Sender{Conn: c.ConnectWith(nats.Token(token)), Subject: eventstore.DeskSubject(testDesk.Name)}
	senders[1] = &clustertest.Sender{Conn: c.Connect(c.DeskSeed), Header: nats.Header{"Authorization": {"Bearer " + token}}}
	for i := range senders {
		senders[i].Lines, senders[i].Batch, senders[i].Timeout = lines[i], 250, 15*time.Second
		go func() {
			err := senders[i].Run(sendCtx)
			if err != nil {
				err = fmt.Errorf("%w; first errors: %q", err, senders[i].FirstErrors)
			}
			errs <- err
		}()
	}
	victim, aKilled, finished := -1, false, 0
	for finished < 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			finished++
			continue
		case <-time.After(20 * time.Millisecond):
		}
		if victim >= 0 && aKilled {
			continue
		}
		last, err := b.Store.LastSeq(ctx)
		if err != nil {
			continue // the stream may be between leaders
		}
		if victim < 0 && int64(last) >= sum.Events/3 {
			leader, err := clustertest.StreamLeader(ctx, b.Store.JetStream(), eventstore.StreamName)
			if err != nil || c.Index(leader) < 0 {
				continue
			}
			victim = c.Index(leader)
			c.Kill(victim)
			t.Logf("killed %s, the stream's leader, with SIGKILL at seq %d, %v after the senders started", leader, last, time.Since(start).Round(time.Millisecond))
		}
		if victim >= 0 && !aKilled && int64(last) >= 2*sum.Events/3 {
			applied := appliedSeqOf(t, dirA)
			a.kill()
			aKilled = true
			t.Logf("killed hoso process A with SIGKILL while it projected: read model at seq %d, stream at %d", applied, last)
		}
	}
	sendTime := time.Since(start)
	leaderless, leaders := watch.Stop()
	if victim < 0 || !aKilled {
		t.Fatalf("the senders finished before the faults (leader killed %v, A killed %v): too little traffic", victim >= 0, aKilled)
	}
	for i, s := range senders {
		t.Logf("sender %d (%s): %s", i, cmp.Or(s.Subject, "hoso.ingest with a bearer header"), s.Counts)
	}
	t.Logf("cluster faults: 2 senders over %.1f s: %s; stream leaders %v, seconds without a leader %.1f",
		sendTime.Seconds(), clustertest.Total(senders[:]...), leaders, leaderless.Seconds())

	// The killed node catches up; A starts again on its data directory.
	restart := time.Now()
	c.Restart(victim)
	c.WaitHealthy(3 * time.Minute)
	t.Logf("%s restarted and current after %.1f s", c.Nodes[victim].Name, time.Since(restart).Seconds())
	// A starts again behind the stream and catches up, batch after batch:
	// killed again in the middle of that, then started once more.
	from := appliedSeqOf(t, dirA)
	a.start()
	killedAgain := false
	for {
		applied := appliedSeqOf(t, dirA)
		if applied > from && applied < uint64(sum.Events) {
			a.kill()
			killedAgain = true
			t.Logf("killed hoso process A with SIGKILL again while it caught up: read model at seq %d (from %d) of %d", applied, from, sum.Events)
			break
		}
		if applied >= uint64(sum.Events) {
			t.Logf("hoso process A caught up from seq %d before it could be killed in the middle", from)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	restart = time.Now()
	if killedAgain {
		a.start()
	}
	waitReadyz(t, a.http, 3*time.Minute)
	t.Logf("hoso process A restarted and caught up after %.1f s", time.Since(restart).Seconds())
	waitCaughtUp(t, b)

	// Exactly once: as many messages as events, each id once, and the
	// three replicas equal.
	ids := make(map[string]bool, sum.Events)
	var n int64
	if err := b.Store.Read(ctx, 1, false, func(le hoso.LedgerEntry) error {
		e, err := le.Event()
		if err != nil {
			return err
		}
		if ids[e.ID] {
			return fmt.Errorf("id %q stored twice (again at seq %d)", e.ID, le.Seq)
		}
		ids[e.ID] = true
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != sum.Events {
		t.Fatalf("the stream holds %d events, the history %d", n, sum.Events)
	}
	c.WaitReplicas(eventstore.StreamName, uint64(sum.Events), 3*time.Minute)
	var states []string
	for i := range c.Nodes {
		st, err := c.StreamState(ctx, i, eventstore.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, fmt.Sprintf("%d messages, %d bytes, seq %d-%d", st.Msgs, st.Bytes, st.FirstSeq, st.LastSeq))
	}
	if states[0] != states[1] || states[1] != states[2] {
		t.Errorf("replicas differ: %q", states)
	}

	// hoso verify on the cluster, with B's checkpoint key.
	out, stderr, err := runCmd(t, "", "verify", "--nats-url", c.ClientURLs(), "--nats-creds", c.LedgerSeed,
		"--key", filepath.Join(dir, "b", "checkpoint.key.pub"))
	if err != nil {
		t.Fatalf("hoso verify on the cluster: %v\n%s\n%s", err, out, stderr)
	}
	t.Logf("hoso verify: %s", strings.TrimSpace(out))

	// Report by report, A's read model equals B's, and both the
	// simulator's counts.
	if got := appliedSeqOf(t, dirA); got != uint64(sum.Events) {
		t.Fatalf("A's read model at seq %d, the stream at %d", got, sum.Events)
	}
	for _, q := range []projections.ReportQuery{
		{Unit: "01", Level: hoso.LevelDistrict, From: sum.From, To: sum.To},
		{Unit: "01", Level: hoso.LevelWard, From: sum.From, To: sum.To},
		{Unit: "01", Level: hoso.LevelWard, From: "2023-03-01", To: "2023-03-31"},
		{Unit: "01", Level: hoso.LevelDistrict, From: sum.From, To: sum.To, By: "procedure"},
	} {
		want, err := b.DB.Report(ctx, b.Units, q)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"report", "--data", dirA, "--unit", q.Unit, "--level", string(q.Level), "--from", q.From, "--to", q.To, "--format", "json"}
		if q.By != "" {
			args = append(args, "--by", q.By)
		}
		out, _, err := runCmd(t, "", args...)
		if err != nil {
			t.Fatal(err)
		}
		var got projections.Report
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(&got)
		if string(wj) != string(gj) {
			t.Errorf("report %+v: A's read model\n%s\nB's\n%s", q, gj, wj)
		}
		if q.Level == hoso.LevelDistrict && q.By == "" {
			compareReport(t, want, sum)
		}
	}
}
