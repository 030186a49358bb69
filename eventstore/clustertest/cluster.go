// Package clustertest runs the ledger's three-node NATS cluster, as
// deploy/nats configures it, for the fault tests. Each node is a child
// process of the test binary, started from its configuration file by
// nats-server's own loader (server.ProcessConfigFile), so that a test can
// kill it with SIGKILL, as a crash or a power cut would, and start it again
// on its store directory.
//
// A test binary that uses it calls RunNodeIfChild first thing in its
// TestMain: that is where a child becomes a node.
package clustertest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// The environment variables that deploy/nats/accounts.conf reads.
const (
	LedgerKeyEnv  = "HOSO_NATS_LEDGER_NKEY"
	DeskKeyEnv    = "HOSO_NATS_DESK_NKEY"
	AdminKeyEnv   = "HOSO_NATS_ADMIN_NKEY"
	CalloutKeyEnv = "HOSO_NATS_CALLOUT_ISSUER"
)

// Account is the ledger's account in deploy/nats/accounts.conf.
const Account = "HOSO"

// nodeEnv carries a child's nodeSpec.
const nodeEnv = "HOSO_CLUSTERTEST_NODE"

// nodeSpec is what a child needs beyond its configuration file: where it
// runs in the test, on loopback.
type nodeSpec struct {
	Config      string `json:"config"`
	StoreDir    string `json:"store_dir"`
	ClusterPort int    `json:"cluster_port"`
	Routes      []int  `json:"routes"`
	// Ready is the file the child writes its addresses to once it serves.
	Ready string `json:"ready"`
}

// readyInfo is what a node writes to its Ready file.
type readyInfo struct {
	Name    string `json:"name"`
	Client  string `json:"client"`
	Monitor string `json:"monitor"`
}

// RunNodeIfChild runs a node and exits if this process was started as one;
// otherwise it returns at once. Call it first in TestMain.
func RunNodeIfChild() {
	spec := os.Getenv(nodeEnv)
	if spec == "" {
		return
	}
	if err := runNode(spec); err != nil {
		fmt.Fprintln(os.Stderr, "clustertest node:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// LoadConfig loads a node's configuration file as nats-server does, and
// moves it onto loopback: the client and monitoring ports are chosen by the
// system, the cluster listens on clusterPort and routes to routes.
func LoadConfig(path, storeDir string, clusterPort int, routes []int) (*server.Options, error) {
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return nil, err
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", clusterPort
	opts.Routes = nil
	for _, p := range routes {
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(p)})
	}
	opts.StoreDir = storeDir
	opts.NoSigs = true
	return opts, nil
}

func runNode(specJSON string) error {
	var spec nodeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	opts, err := LoadConfig(spec.Config, spec.StoreDir, spec.ClusterPort, spec.Routes)
	if err != nil {
		return err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	s.Start()
	if !s.ReadyForConnections(time.Minute) {
		return errors.New("not ready for connections within a minute")
	}
	info, err := json.Marshal(readyInfo{Name: opts.ServerName, Client: s.ClientURL(), Monitor: "http://" + s.MonitorAddr().String()})
	if err != nil {
		return err
	}
	tmp := spec.Ready + ".tmp"
	if err := os.WriteFile(tmp, info, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, spec.Ready); err != nil {
		return err
	}
	// The parent holds the other end of standard input: it closes it to
	// stop the node cleanly, and so does its death, so that no node
	// outlives its test.
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

// Cluster is three nodes started from deploy/nats/node-{1,2,3}.conf, with
// the three roles' NKey seeds in files.
type Cluster struct {
	t   testing.TB
	dir string
	// LedgerSeed, DeskSeed and AdminSeed are the NKey seed files of the
	// ledger's role, the shared desk role and the system account's
	// administrator; CalloutSeed is the account key that signs the desk
	// principals' users (hoso serve --nats-callout-key).
	LedgerSeed, DeskSeed, AdminSeed, CalloutSeed string
	Nodes                                        []*Node
	env                                          []string
}

// Node is one nats-server of the cluster.
type Node struct {
	// Name is the server_name of its configuration file, known once it
	// has started.
	Name string
	// ClientURL and MonitorURL are where it serves now (they change when
	// it is started again).
	ClientURL, MonitorURL string

	spec  nodeSpec
	log   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// ConfigDir finds deploy/nats from the test's working directory, the
// directory of the package under test, by walking up to the module root.
func ConfigDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "deploy", "nats")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Keys generates the three roles' users and the desk callout's issuer,
// writes their seeds into dir and returns the environment that
// deploy/nats/accounts.conf reads.
func Keys(t testing.TB, dir string) (env []string, ledger, desk, admin, callout string) {
	t.Helper()
	gen := func(name, envName string, create func() (nkeys.KeyPair, error)) string {
		kp, err := create()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		path := filepath.Join(dir, name+".nk")
		if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, envName+"="+pub)
		return path
	}
	ledger = gen("ledger", LedgerKeyEnv, nkeys.CreateUser)
	desk = gen("desk", DeskKeyEnv, nkeys.CreateUser)
	admin = gen("admin", AdminKeyEnv, nkeys.CreateUser)
	callout = gen("callout", CalloutKeyEnv, nkeys.CreateAccount)
	return env, ledger, desk, admin, callout
}

// Start starts the three nodes and waits until JetStream answers in the
// ledger's account. They are stopped when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir()}
	c.env, c.LedgerSeed, c.DeskSeed, c.AdminSeed, c.CalloutSeed = Keys(t, c.dir)
	confDir := ConfigDir(t)
	ports := clusterPorts(t, 3)
	for i := range 3 {
		n := &Node{spec: nodeSpec{
			Config:      filepath.Join(confDir, fmt.Sprintf("node-%d.conf", i+1)),
			StoreDir:    filepath.Join(c.dir, fmt.Sprintf("node-%d", i+1)),
			ClusterPort: ports[i],
			Routes:      ports,
			Ready:       filepath.Join(c.dir, fmt.Sprintf("node-%d.ready", i+1)),
		}, log: filepath.Join(c.dir, fmt.Sprintf("node-%d.log", i+1))}
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(c.stop)
	for i := range c.Nodes {
		c.startNode(i)
	}
	for i := range c.Nodes {
		c.waitNode(i)
	}
	c.WaitJetStream(2 * time.Minute)
	return c
}

// ClientURLs is every node's client URL, comma separated, as --nats-url
// takes them.
func (c *Cluster) ClientURLs() string {
	var urls []string
	for _, n := range c.Nodes {
		if n.ClientURL != "" {
			urls = append(urls, n.ClientURL)
		}
	}
	return strings.Join(urls, ",")
}

// Connect connects to the cluster with a seed file (one of the roles').
func (c *Cluster) Connect(seed string, opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	auth, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.ConnectWith(append([]nats.Option{auth}, opts...)...)
}

// ConnectWith connects with opts alone (a desk principal's token), and
// reconnects for ever.
func (c *Cluster) ConnectWith(opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.ClientURLs(), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

func (c *Cluster) startNode(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	_ = os.Remove(n.spec.Ready)
	spec, err := json.Marshal(n.spec)
	if err != nil {
		c.t.Fatal(err)
	}
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), c.env...), nodeEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.cmd, n.stdin, n.done = cmd, stdin, make(chan struct{})
	n.ClientURL, n.MonitorURL = "", ""
	done := n.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
}

// waitNode waits for node i's ready file.
func (c *Cluster) waitNode(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := os.ReadFile(n.spec.Ready)
		if err == nil {
			var info readyInfo
			if err := json.Unmarshal(b, &info); err != nil {
				c.t.Fatal(err)
			}
			n.Name, n.ClientURL, n.MonitorURL = info.Name, info.Client, info.Monitor
			return
		}
		select {
		case <-n.done:
			c.t.Fatalf("%s exited before serving:\n%s", n.spec.Config, tail(n.log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not serving after a minute:\n%s", n.spec.Config, tail(n.log))
		}
	}
}

// Kill kills node i with SIGKILL and waits for it to be gone: no shutdown,
// no flush, no goodbye to the other nodes or the clients.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	if err := n.cmd.Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
	<-n.done
	n.ClientURL, n.MonitorURL = "", ""
}

// Restart starts node i again on its store directory and waits until it
// serves clients (not until it has caught up: see WaitHealthy).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.startNode(i)
	c.waitNode(i)
}

// Index returns the index of the node named name, -1 if none is.
func (c *Cluster) Index(name string) int {
	for i, n := range c.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// stop stops the nodes still running cleanly, killing those that do not
// stop within half a minute.
func (c *Cluster) stop() {
	for _, n := range c.Nodes {
		if n.cmd != nil {
			n.stdin.Close()
		}
	}
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	}
	if c.t.Failed() {
		for _, n := range c.Nodes {
			c.t.Logf("%s log (end):\n%s", n.Name, tail(n.log))
		}
	}
}

// WaitJetStream waits until JetStream answers the ledger's account: the
// meta group has a leader.
func (c *Cluster) WaitJetStream(within time.Duration) {
	c.t.Helper()
	nc := c.Connect(c.LedgerSeed)
	defer nc.Close()
	deadline := time.Now().Add(within)
	for {
		reply, err := nc.Request("$JS.API.INFO", nil, 2*time.Second)
		if err == nil && !strings.Contains(string(reply.Data), `"error"`) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("JetStream not available within %v: %v %s", within, err, replyData(reply))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func replyData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// Healthy reports whether node i says it is healthy: its meta group and
// every stream and consumer it holds a replica of are current
// (nats-server's /healthz).
func (c *Cluster) Healthy(ctx context.Context, i int) error {
	n := c.Nodes[i]
	if n.MonitorURL == "" {
		return fmt.Errorf("%s is not running", n.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.MonitorURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: /healthz %d %s", n.Name, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// WaitHealthy waits until every running node is healthy.
func (c *Cluster) WaitHealthy(within time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for i, n := range c.Nodes {
		if n.MonitorURL == "" {
			continue
		}
		for {
			err := c.Healthy(ctx, i)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				c.t.Fatalf("not healthy within %v: %v", within, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// WaitReplicas waits until every node's own replica of stream holds msgs
// messages, up to seq msgs: a node that /healthz calls healthy may still be
// applying what it missed while it was down.
func (c *Cluster) WaitReplicas(stream string, msgs uint64, within time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for i := range c.Nodes {
		for {
			st, err := c.StreamState(ctx, i, stream)
			if err == nil && st.Msgs == msgs && st.LastSeq == msgs {
				break
			}
			select {
			case <-ctx.Done():
				c.t.Fatalf("%s's replica of %s did not reach %d messages within %v: %+v (%v)", c.Nodes[i].Name, stream, msgs, within, st, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// StreamState is node i's own replica of a stream of the ledger's account,
// as its monitoring endpoint (/jsz) reports it from its store.
func (c *Cluster) StreamState(ctx context.Context, i int, stream string) (server.StreamState, error) {
	n := c.Nodes[i]
	if n.MonitorURL == "" {
		return server.StreamState{}, fmt.Errorf("%s is not running", n.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.MonitorURL+"/jsz?accounts=true&streams=true", nil)
	if err != nil {
		return server.StreamState{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return server.StreamState{}, err
	}
	defer resp.Body.Close()
	var info server.JSInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return server.StreamState{}, fmt.Errorf("%s /jsz: %w", n.Name, err)
	}
	for _, a := range info.AccountDetails {
		if a.Name != Account {
			continue
		}
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.State, nil
			}
		}
	}
	return server.StreamState{}, fmt.Errorf("%s holds no replica of %s", n.Name, stream)
}

// clusterPorts picks n free loopback ports below the system's ephemeral
// range, as nats-server's own cluster tests do: a port the system hands out
// for outgoing connections could be taken while a killed node is down, and
// its routes must find it at the same port when it starts again.
func clusterPorts(t testing.TB, n int) []int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const from = 10_000
	if low <= from+n {
		t.Fatalf("ephemeral ports start at %d: no room below for cluster ports", low)
	}
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free loopback port found for the cluster")
		}
		p := from + rand.IntN(low-from)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	return ports
}

// tail returns the last lines of a log file.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 60 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// StreamLeader returns the name of the stream's leader as the cluster
// answers it now ("" while it has none).
func StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return "", nil
	}
	return info.Cluster.Leader, nil
}

// LeaderWatch measures how long a stream had no leader: it asks the cluster
// for the stream's leader every 100 ms, and counts the time between two
// answers naming a leader when an answer in between named none or failed.
type LeaderWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	leaderless time.Duration
	leaders    []string
}

// WatchLeader starts a LeaderWatch of stream, asking through nc.
func WatchLeader(nc *nats.Conn, stream string) (*LeaderWatch, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &LeaderWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var lost time.Time // when a leader was last seen before a gap
		seen := time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			actx, acancel := context.WithTimeout(ctx, time.Second)
			leader, err := StreamLeader(actx, js, stream)
			acancel()
			now := time.Now()
			switch {
			case err == nil && leader != "":
				if !lost.IsZero() {
					w.leaderless += now.Sub(lost)
					lost = time.Time{}
				}
				if len(w.leaders) == 0 || w.leaders[len(w.leaders)-1] != leader {
					w.leaders = append(w.leaders, leader)
				}
				seen = now
			case lost.IsZero():
				lost = seen
			}
			select {
			case <-ctx.Done():
				if !lost.IsZero() {
					w.leaderless += time.Since(lost)
				}
				return
			case <-tick.C:
			}
		}
	}()
	return w, nil
}

// Stop ends the watch and returns the time without a leader and the leaders
// seen, in order.
func (w *LeaderWatch) Stop() (time.Duration, []string) {
	w.cancel()
	<-w.done
	return w.leaderless, w.leaders
}

// Sender is a desk system sending a history to hoso.ingest in NDJSON
// batches, as one that must not lose an event does: a batch not answered in
// time, or answered with an error for any of its events, is sent again
// whole after a pause. The events' ids make those already stored
// duplicates, and the per-dossier order within the batch puts an event
// refused because its predecessor was not stored back in place.
type Sender struct {
	Conn *nats.Conn
	// Subject is where requests go: eventstore.IngestSubject when empty.
	Subject string
	// Header goes with every request (the desk's Authorization on
	// hoso.ingest).
	Header  nats.Header
	Lines   [][]byte
	Batch   int
	Timeout time.Duration
	// Attempts bounds the sends of one batch.
	Attempts int

	// What it saw.
	Counts
	// FirstErrors are the first few errors answered, for the log.
	FirstErrors []string
}

// Counts are what senders saw: requests made, events sent for the first
// time, events answered appended or duplicate, events sent again, and the
// errors by code (or transport error) of the answers that were not.
type Counts struct {
	Requests, Sent, Appended, Duplicates, Retried int64
	Errors                                        map[string]int64
}

// Total adds up what senders saw.
func Total(senders ...*Sender) Counts {
	total := Counts{Errors: map[string]int64{}}
	for _, s := range senders {
		total.Requests += s.Requests
		total.Sent += s.Sent
		total.Appended += s.Appended
		total.Duplicates += s.Duplicates
		total.Retried += s.Retried
		for k, v := range s.Errors {
			total.Errors[k] += v
		}
	}
	return total
}

// String is the figures as the fault tests log them.
func (c Counts) String() string {
	return fmt.Sprintf("sent %d in %d requests, acknowledged appended %d, retried %d, duplicates recognised %d, errors %v",
		c.Sent, c.Requests, c.Appended, c.Retried, c.Duplicates, c.Errors)
}

// Run sends every line; it fails only if a batch was still refused after
// Attempts sends.
func (s *Sender) Run(ctx context.Context) error {
	if s.Batch <= 0 {
		s.Batch = 500
	}
	if s.Timeout <= 0 {
		s.Timeout = 30 * time.Second
	}
	if s.Attempts <= 0 {
		s.Attempts = 40
	}
	s.Errors = map[string]int64{}
	for from := 0; from < len(s.Lines); from += s.Batch {
		batch := s.Lines[from:min(from+s.Batch, len(s.Lines))]
		s.Sent += int64(len(batch))
		pause := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			ok, why := s.send(ctx, batch)
			if ok {
				break
			}
			if attempt >= s.Attempts {
				return fmt.Errorf("batch at line %d refused %d times; last: %s", from+1, attempt, why)
			}
			s.Retried += int64(len(batch))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
			pause = min(2*pause, 2*time.Second)
		}
	}
	return nil
}

// send sends one batch and counts its answers; ok when every event was
// appended or a duplicate.
func (s *Sender) send(ctx context.Context, batch [][]byte) (ok bool, why string) {
	msg := nats.NewMsg(cmp.Or(s.Subject, eventstore.IngestSubject))
	for k, v := range s.Header {
		msg.Header[k] = v
	}
	msg.Header.Set("Content-Type", "application/x-ndjson")
	msg.Data = bytesJoin(batch)
	rctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	s.Requests++
	reply, err := s.Conn.RequestMsgWithContext(rctx, msg)
	if err != nil {
		key := "transport"
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			key = "no_responders"
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			key = "timeout"
		}
		s.Errors[key] += int64(len(batch))
		if len(s.FirstErrors) < 10 {
			s.FirstErrors = append(s.FirstErrors, err.Error())
		}
		return false, err.Error()
	}
	var answer hoso.BatchAnswer
	if err := json.Unmarshal(reply.Data, &answer); err != nil || len(answer.Results) != len(batch) {
		s.Errors["bad_answer"] += int64(len(batch))
		return false, fmt.Sprintf("answer %.300s (%v)", reply.Data, err)
	}
	ok = true
	for i, r := range answer.Results {
		switch {
		case r.Error != nil:
			s.Errors[string(r.Error.Code)]++
			ok = false
			why = fmt.Sprintf("%s: %s: %s", bytes.TrimSpace(batch[i]), r.Error.Code, r.Error.Message)
			if len(s.FirstErrors) < 10 {
				s.FirstErrors = append(s.FirstErrors, why)
			}
		case r.AppendResult != nil && r.Duplicate:
			s.Duplicates++
		case r.AppendResult != nil:
			s.Appended++
		}
	}
	return ok, why
}

func bytesJoin(lines [][]byte) []byte {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	b := make([]byte, 0, n)
	for _, l := range lines {
		b = append(b, l...)
		if len(l) == 0 || l[len(l)-1] != '\n' {
			b = append(b, '\n')
		}
	}
	return b
}
