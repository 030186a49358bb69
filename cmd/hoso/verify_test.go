package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/transparency"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ledgerEvents interleave three dossiers: A at seqs 1, 3, 6; B at 2, 5; C at 4.
var ledgerEvents = []string{
	`{"type":"received","dossier":"A","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`,
	`{"type":"received","dossier":"B","unit":"00127","at":"2024-03-04T08:05:00+07:00","procedure":"1.001776","channel":"direct","days":3}`,
	`{"type":"transferred","dossier":"A","unit":"00127","to_unit":"004","at":"2024-03-04T08:10:00+07:00"}`,
	`{"type":"received","dossier":"C","unit":"00127","at":"2024-03-04T08:15:00+07:00","procedure":"1.001776","channel":"postal","days":3}`,
	`{"type":"transferred","dossier":"B","unit":"00127","to_unit":"004","at":"2024-03-04T08:20:00+07:00"}`,
	`{"type":"resolved","dossier":"A","unit":"004","at":"2024-03-04T08:30:00+07:00"}`,
}

// openLedger runs Main on dir with checkpoints every two events and appends
// ledgerEvents.
func openTamperLedger(t *testing.T, dir string) *Main {
	t.Helper()
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	m.Config.CheckpointEvery = 2
	m.Now = func() time.Time { return testNow }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for i, e := range ledgerEvents {
		if code, body := post(t, m, "application/json", e); code != http.StatusCreated {
			t.Fatalf("event %d: %d %s", i, code, body)
		}
	}
	return m
}

// buildLedger leaves a closed ledger of ledgerEvents in a new data dir; its
// last checkpoint covers every event.
func buildLedger(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	m := openTamperLedger(t, dir)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func verify(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err := run(ctx, append([]string{"verify"}, args...), nil, &out, &errb)
	return out.String() + errb.String(), err
}

// admin opens the ledger's stream as its operator would, with the ledger's
// own credentials, without touching its configuration.
func admin(t *testing.T, dir string) (*eventstore.Store, jetstream.Stream) {
	t.Helper()
	ctx := context.Background()
	s, err := eventstore.Open(ctx, eventstore.Config{DataDir: dir, Listen: "127.0.0.1:0", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s, st
}

// liftDeny is what an administrator must do to delete or purge: the server
// refuses to lift DenyDelete or DenyPurge by a configuration update, so the
// stream is recreated without them and its messages copied over.
func liftDeny(t *testing.T, s *eventstore.Store, st jetstream.Stream) jetstream.Stream {
	t.Helper()
	ctx := context.Background()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.DenyDelete = false
	if _, err := s.JetStream().UpdateStream(ctx, cfg); err == nil {
		t.Fatal("the server let DenyDelete be lifted by an update")
	}
	cfg.DenyPurge = false
	return restoreModified(t, s, st, &cfg, func([]*jetstream.RawStreamMsg) {})
}

// restoreModified replaces the stream by one rebuilt from its messages as
// change returns them: what restoring an edited backup amounts to.
func restoreModified(t *testing.T, s *eventstore.Store, st jetstream.Stream, cfg *jetstream.StreamConfig, change func(msgs []*jetstream.RawStreamMsg)) jetstream.Stream {
	t.Helper()
	ctx := context.Background()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = &info.Config
	}
	var msgs []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	change(msgs)
	js := s.JetStream()
	if err := js.DeleteStream(ctx, eventstore.StreamName); err != nil {
		t.Fatal(err)
	}
	restored, err := js.CreateStream(ctx, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := js.Publish(ctx, m.Subject, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	return restored
}

func TestVerifyCleanLedger(t *testing.T) {
	dir := buildLedger(t)
	out, err := verify(t, "--data", dir)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ok: 6 events of 3 dossiers, contiguous; 3 checkpoints") || !strings.Contains(out, "latest checkpoint: size 6") {
		t.Errorf("summary:\n%s", out)
	}
	// Reopening the ledger keeps the tree: a restart neither re-hashes nor
	// breaks it.
	m := reopen(t, dir)
	if got := m.Transparency.TreeSize(); got != 6 {
		t.Errorf("tree size after restart %d, want 6", got)
	}
	// While the server runs on the directory, verify --data is refused
	// (exit 2) rather than start a second server on the same files.
	out, err = verify(t, "--data", dir)
	var exit *exitError
	if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(out+err.Error(), "in use") {
		t.Errorf("verify --data on a running ledger: %v\n%s", err, out)
	}
	m.Close()
	if out, err := verify(t, "--data", dir); err != nil {
		t.Fatalf("verify after restart: %v\n%s", err, out)
	}

	// Without its tree file, the ledger rebuilds the tree from the stream
	// and goes on signing checkpoints that extend the old ones.
	if err := os.Remove(filepath.Join(dir, "tree.hashes")); err != nil {
		t.Fatal(err)
	}
	m = reopen(t, dir)
	if code, body := post(t, m, "application/json", `{"type":"returned","dossier":"A","unit":"004","at":"2024-03-04T08:40:00+07:00"}`); code != http.StatusCreated {
		t.Fatalf("event 7: %d %s", code, body)
	}
	waitCheckpoint(t, m, 7)
	m.Close()
	if out, err := verify(t, "--data", dir); err != nil || !strings.Contains(out, "ok: 7 events of 3 dossiers, contiguous; 4 checkpoints") {
		t.Fatalf("verify after rebuilding the tree: %v\n%s", err, out)
	}
}

func reopen(t *testing.T, dir string) *Main {
	t.Helper()
	m := NewMain()
	m.Config.DataDir, m.Config.HTTPAddr, m.Config.NATSListen, m.Config.LogLevel = dir, "127.0.0.1:0", "127.0.0.1:0", "error"
	m.Now = func() time.Time { return testNow }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// A ledger whose stream was rewritten under it (and whose tree file is
// gone, so it cannot tell which event) refuses to sign a checkpoint that
// does not extend its last one.
func TestLedgerStopsSigningAfterRewrite(t *testing.T) {
	dir := buildLedger(t)
	s, st := admin(t, dir)
	restoreModified(t, s, st, nil, func(msgs []*jetstream.RawStreamMsg) {
		msgs[3].Data = bytes.Replace(msgs[3].Data, []byte(`"postal"`), []byte(`"online"`), 1)
	})
	s.Close()
	if err := os.Remove(filepath.Join(dir, "tree.hashes")); err != nil {
		t.Fatal(err)
	}
	m := reopen(t, dir)
	if code, body := post(t, m, "application/json", `{"type":"returned","dossier":"A","unit":"004","at":"2024-03-04T08:40:00+07:00"}`); code != http.StatusCreated {
		t.Fatalf("event 7: %d %s", code, body)
	}
	for i := 0; m.Transparency.Halted() == nil; i++ {
		if i == 500 {
			t.Fatal("the ledger did not notice its rewritten stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(m.Transparency.Halted().Error(), "no longer hash to checkpoint 6") {
		t.Errorf("halted: %v", m.Transparency.Halted())
	}
	m.Close()
	if cp, err := m.Transparency.LatestCheckpoint(context.Background()); err != nil || cp.Size != 6 {
		t.Errorf("latest checkpoint %d (%v), want still 6", cp.Size, err)
	}
	if _, err := verify(t, "--data", dir); exitCode(err) != 1 || !strings.Contains(err.Error(), "HOSO_EVENTS seq 3: changed or reordered") {
		t.Errorf("verify: %v", err)
	}
}

// A ledger rebuilding its tree from a stream with a message deleted stops
// the tree just before it and names it, rather than hash past the gap.
func TestTreeHaltsAtDeletedMessage(t *testing.T) {
	dir := buildLedger(t)
	s, st := admin(t, dir)
	st = liftDeny(t, s, st)
	if err := st.DeleteMsg(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Remove(filepath.Join(dir, "tree.hashes")); err != nil {
		t.Fatal(err)
	}
	m := reopen(t, dir)
	for i := 0; m.Transparency.Halted() == nil; i++ {
		if i == 500 {
			t.Fatal("the tree did not notice the deleted message")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := "HOSO_EVENTS seq 3: missing: the stream goes from seq 2 to 4"; m.Transparency.Halted().Error() != want {
		t.Errorf("halted: %v, want %q", m.Transparency.Halted(), want)
	}
	if got := m.Transparency.TreeSize(); got != 2 {
		t.Errorf("tree size %d, want 2: the events before the gap", got)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// tamper changes the ledger and returns what verify must say.
		tamper func(t *testing.T, dir string) string
	}{
		{"administrator deletes one message", func(t *testing.T, dir string) string {
			s, st := admin(t, dir)
			defer s.Close()
			st = liftDeny(t, s, st)
			if err := st.DeleteMsg(ctx, 3); err != nil {
				t.Fatal(err)
			}
			return "HOSO_EVENTS seq 3: missing"
		}},
		{"administrator deletes the last message", func(t *testing.T, dir string) string {
			s, st := admin(t, dir)
			defer s.Close()
			st = liftDeny(t, s, st)
			if err := st.DeleteMsg(ctx, 6); err != nil {
				t.Fatal(err)
			}
			return "HOSO_EVENTS seq 6: missing"
		}},
		{"administrator purges one dossier", func(t *testing.T, dir string) string {
			s, st := admin(t, dir)
			defer s.Close()
			st = liftDeny(t, s, st)
			if err := st.Purge(ctx, jetstream.WithPurgeSubject(eventstore.Subject("B"))); err != nil {
				t.Fatal(err)
			}
			return "HOSO_EVENTS seq 2: missing"
		}},
		{"restore from a backup with one event changed", func(t *testing.T, dir string) string {
			s, st := admin(t, dir)
			defer s.Close()
			restoreModified(t, s, st, nil, func(msgs []*jetstream.RawStreamMsg) {
				msgs[3].Data = bytes.Replace(msgs[3].Data, []byte(`"postal"`), []byte(`"online"`), 1)
			})
			return "HOSO_EVENTS seq 4: changed"
		}},
		{"restore from a backup with two events reordered", func(t *testing.T, dir string) string {
			s, st := admin(t, dir)
			defer s.Close()
			restoreModified(t, s, st, nil, func(msgs []*jetstream.RawStreamMsg) {
				msgs[2], msgs[5] = msgs[5], msgs[2]
			})
			return "HOSO_EVENTS seq 3: "
		}},
		{"an event changed, verified without the tree file", func(t *testing.T, dir string) string {
			s, st := admin(t, dir)
			defer s.Close()
			restoreModified(t, s, st, nil, func(msgs []*jetstream.RawStreamMsg) {
				msgs[3].Data = bytes.Replace(msgs[3].Data, []byte(`"postal"`), []byte(`"online"`), 1)
			})
			if err := os.Remove(filepath.Join(dir, "tree.hashes")); err != nil {
				t.Fatal(err)
			}
			// Checkpoints at 2, 4 and 6: the change is between 2 and 4.
			return "HOSO_EVENTS seq 3: changed or reordered: events 3..4 do not hash to the root signed by checkpoint 4"
		}},
		{"two events reordered, verified without the tree file", func(t *testing.T, dir string) string {
			s, st := admin(t, dir)
			defer s.Close()
			restoreModified(t, s, st, nil, func(msgs []*jetstream.RawStreamMsg) {
				msgs[2], msgs[5] = msgs[5], msgs[2]
			})
			if err := os.Remove(filepath.Join(dir, "tree.hashes")); err != nil {
				t.Fatal(err)
			}
			return `HOSO_EVENTS seq 3: dossier "A": version 3 follows version 1`
		}},
		{"a checkpoint signed by another key", func(t *testing.T, dir string) string {
			s, _ := admin(t, dir)
			defer s.Close()
			skey, _, err := note.GenerateKey(rand.Reader, "impostor")
			if err != nil {
				t.Fatal(err)
			}
			key, err := transparency.ParseKey(skey)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := key.Sign(6, tlog.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			ack, err := s.JetStream().Publish(ctx, eventstore.CheckpointSubject, []byte(cp.Note))
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("HOSO_CHECKPOINTS seq %d: checkpoint signature: not signed by", ack.Sequence)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := buildLedger(t)
			want := tt.tamper(t, dir)
			out, err := verify(t, "--data", dir)
			if err == nil || exitCode(err) != 1 {
				t.Fatalf("verify: exit %d (%v), want 1\n%s", exitCode(err), err, out)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("verify said %q, want %q", err, want)
			}
			t.Log(err)
		})
	}
}

// waitCheckpoint waits, bounded, for a checkpoint covering size events.
func waitCheckpoint(t *testing.T, m *Main, size uint64) hoso.Checkpoint {
	t.Helper()
	for range 500 {
		if cp, err := m.Transparency.LatestCheckpoint(context.Background()); err == nil && cp.Size >= size {
			return cp
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of %d events", size)
	return hoso.Checkpoint{}
}

func TestDossierProofVerifiesOffline(t *testing.T) {
	dir := t.TempDir()
	m := openTamperLedger(t, filepath.Join(dir, "data"))
	latest := waitCheckpoint(t, m, 6)

	code, key := get(t, m, "/v1/checkpoint/key")
	if code != http.StatusOK || !strings.HasPrefix(string(key), latest.Origin+"+") {
		t.Fatalf("key: %d %s", code, key)
	}
	keyFile := filepath.Join(dir, "ledger.pub")
	writeFile(t, keyFile, key)
	code, body := get(t, m, "/v1/checkpoint")
	var cp hoso.Checkpoint
	if err := json.Unmarshal(body, &cp); code != http.StatusOK || err != nil || cp.Size != 6 {
		t.Fatalf("checkpoint: %d %s", code, body)
	}

	code, body = get(t, m, "/v1/dossiers/A/proof")
	if code != http.StatusOK {
		t.Fatalf("proof: %d %s", code, body)
	}
	proofFile := filepath.Join(dir, "A.proof.json")
	writeFile(t, proofFile, body)
	out, err := verify(t, "--proof", proofFile, "--key", keyFile)
	if err != nil || !strings.Contains(out, "ok: dossier A: 3 events proven") {
		t.Fatalf("verify --proof: %v\n%s", err, out)
	}

	// The same proof with one event's bytes changed fails, naming its seq.
	var p hoso.DossierProof
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	// The proven bytes say who submitted each event: by is part of what
	// the checkpoint signs.
	for _, e := range p.Events {
		if !bytes.Contains(e.Data, []byte(`"by":"`+testDesk.Name+`"`)) {
			t.Errorf("proof of seq %d: stored bytes without the submitter: %s", e.Seq, e.Data)
		}
	}
	if p.Events[1].Seq != 3 {
		t.Fatalf("A's second event at seq %d, want 3", p.Events[1].Seq)
	}
	p.Events[1].Data = bytes.Replace(p.Events[1].Data, []byte(`"004"`), []byte(`"005"`), 1)
	changed, _ := json.Marshal(p)
	writeFile(t, proofFile, changed)
	out, err = verify(t, "--proof", proofFile, "--key", keyFile)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "seq 3: not in the signed tree") {
		t.Fatalf("changed proof: exit %d %v\n%s", exitCode(err), err, out)
	}

	// Another ledger's key does not verify this ledger's checkpoint.
	_, otherKey, err := note.GenerateKey(rand.Reader, latest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, proofFile, body)
	if _, err := verify(t, "--proof", proofFile, "--key", otherKey); exitCode(err) != 1 || !strings.Contains(err.Error(), "not signed by") {
		t.Fatalf("other key: exit %d %v", exitCode(err), err)
	}

	// Consistency between two signed checkpoints.
	older, err := m.Transparency.CheckpointAtOrAfter(context.Background(), 2)
	if err != nil || older.Size != 2 {
		t.Fatalf("checkpoint at or after 2: %+v %v", older, err)
	}
	code, body = get(t, m, "/v1/consistency?from=2&to=6")
	var cons hoso.ConsistencyProof
	if err := json.Unmarshal(body, &cons); code != http.StatusOK || err != nil {
		t.Fatalf("consistency: %d %s", code, body)
	}
	proof := make(tlog.TreeProof, len(cons.Proof))
	for i, h := range cons.Proof {
		copy(proof[i][:], h)
	}
	if err := tlog.CheckTree(proof, 6, tlog.Hash(cp.Root), 2, tlog.Hash(older.Root)); err != nil {
		t.Errorf("consistency proof 2..6 does not check against the signed roots: %v", err)
	}

	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{"/v1/consistency?from=x&to=6", http.StatusBadRequest, `"field":"from"`},
		{"/v1/consistency?from=2&to=7", http.StatusBadRequest, `"field":"to"`},
		{"/v1/consistency?from=3&to=2", http.StatusBadRequest, `"field":"to"`},
		{"/v1/dossiers/nope/proof", http.StatusNotFound, `"not_found"`},
		{"/v1/checkpoint?format=xml", http.StatusBadRequest, `"field":"format"`},
	} {
		code, body := get(t, m, tc.path)
		if code != tc.status || !strings.Contains(string(body), tc.says) {
			t.Errorf("GET %s: %d %s, want %d with %s", tc.path, code, body, tc.status, tc.says)
		}
	}
}

// GET /v1/dossiers/{code} says who submitted each event: by, set by the
// ledger from the principal that sent it, whatever door it came through.
func TestDossierSaysWhoSubmitted(t *testing.T) {
	m := openMain(t, filepath.Join(t.TempDir(), "data"))
	ward := hoso.Principal{Name: "desk-viet-hung", Role: hoso.RoleDesk, Unit: "00127"}
	for _, e := range []struct {
		p    hoso.Principal
		body string
	}{
		{testDesk, `{"type":"received","dossier":"W1","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`},
		{ward, `{"type":"transferred","dossier":"W1","unit":"00127","to_unit":"004","at":"2024-03-04T08:10:00+07:00"}`},
	} {
		if code, body := request(t, m, http.MethodPost, "/v1/events", tokenOf(t, m, e.p), "application/json", e.body); code != http.StatusCreated {
			t.Fatalf("%s: %d %s", e.p.Name, code, body)
		}
	}
	code, body := get(t, m, "/v1/dossiers/W1")
	var view struct {
		Events []struct {
			Seq  uint64 `json:"seq"`
			Type string `json:"type"`
			By   string `json:"by"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &view); code != http.StatusOK || err != nil {
		t.Fatalf("dossier: %d %v %s", code, err, body)
	}
	if len(view.Events) != 2 || view.Events[0].By != testDesk.Name || view.Events[1].By != ward.Name {
		t.Errorf("events %+v, want by %s then %s", view.Events, testDesk.Name, ward.Name)
	}
}

// An event stored before the ledger recorded submitters has no by in its
// bytes. Its bytes are never rewritten: it is served as it is (the page
// shows a dash), proven, and verified with the rest.
func TestEventWithoutByVerifies(t *testing.T) {
	dir := buildLedger(t)
	// As an older ledger stored it: the stored form without the field,
	// written straight to the dossier's subject.
	old := []byte(`{"id":"old-1","type":"received","dossier":"OLD","unit":"00127","at":"2024-03-04T01:00:00Z","procedure":"1.001776","channel":"direct","due":"2024-03-07T01:00:00Z","version":1,"recorded_at":"2024-03-04T01:00:01Z"}`)
	s, _ := admin(t, dir)
	if _, err := s.JetStream().Publish(context.Background(), s.SubjectOf("OLD"), old); err != nil {
		s.Close()
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	m := reopen(t, dir)
	waitCheckpoint(t, m, 7)
	waitReady(t, m)
	code, body := get(t, m, "/v1/dossiers/OLD")
	if code != http.StatusOK || bytes.Contains(body, []byte(`"by"`)) || !bytes.Contains(body, []byte(`"state":"processing"`)) {
		t.Errorf("dossier OLD: %d %s", code, body)
	}
	code, body = get(t, m, "/dossiers/OLD")
	if code != http.StatusOK || !strings.Contains(string(body), `<td class="by"><span title=`) {
		t.Errorf("dossier page of OLD: %d, no dash for its submitter:\n%s", code, body)
	}
	code, body = get(t, m, "/v1/dossiers/OLD/proof")
	if code != http.StatusOK {
		t.Fatalf("proof: %d %s", code, body)
	}
	var p hoso.DossierProof
	if err := json.Unmarshal(body, &p); err != nil || len(p.Events) != 1 || !bytes.Equal(p.Events[0].Data, old) {
		t.Fatalf("proof of OLD does not carry its bytes as stored: %v %s", err, body)
	}
	proofFile := filepath.Join(t.TempDir(), "OLD.proof.json")
	writeFile(t, proofFile, body)
	_, key := get(t, m, "/v1/checkpoint/key")
	keyFile := filepath.Join(t.TempDir(), "ledger.pub")
	writeFile(t, keyFile, key)
	if out, err := verify(t, "--proof", proofFile, "--key", keyFile); err != nil || !strings.Contains(out, "ok: dossier OLD") {
		t.Errorf("verify --proof of OLD: %v\n%s", err, out)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(t, "--data", dir); err != nil || !strings.Contains(out, "ok: 7 events of 4 dossiers") {
		t.Errorf("verify --data: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// An operator who rewrites the history and has the ledger re-sign it with
// its own key passes the checkpoints stored beside the stream, but not a
// checkpoint an auditor kept.
func TestVerifyAgainstAKeptCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openTamperLedger(t, dir)
	waitCheckpoint(t, m, 6)
	code, note := get(t, m, "/v1/checkpoint?format=note")
	if code != http.StatusOK || !strings.Contains(string(note), "\n6\n") {
		t.Fatalf("checkpoint note: %d %s", code, note)
	}
	m.Close()
	kept := filepath.Join(t.TempDir(), "kept.note")
	writeFile(t, kept, note)
	if out, err := verify(t, "--data", dir, "--checkpoint", kept); err != nil || !strings.Contains(out, "extends the 1 kept") {
		t.Fatalf("clean ledger against its kept checkpoint: %v\n%s", err, out)
	}

	s, st := admin(t, dir)
	restoreModified(t, s, st, nil, func(msgs []*jetstream.RawStreamMsg) {
		msgs[3].Data = bytes.Replace(msgs[3].Data, []byte(`"postal"`), []byte(`"online"`), 1)
	})
	if err := s.JetStream().DeleteStream(context.Background(), eventstore.CheckpointStreamName); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Remove(filepath.Join(dir, "tree.hashes")); err != nil {
		t.Fatal(err)
	}
	m = reopen(t, dir) // re-signs the rewritten history with the same key
	waitCheckpoint(t, m, 6)
	m.Close()

	if out, err := verify(t, "--data", dir); err != nil {
		t.Fatalf("a re-signed history passes the stored checkpoints: %v\n%s", err, out)
	}
	_, err := verify(t, "--data", dir, "--checkpoint", kept)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "do not hash to the root of the kept checkpoint 6") {
		t.Fatalf("verify --checkpoint: exit %d %v", exitCode(err), err)
	}
}

// A report names the signed checkpoint it is consistent with: one whose tree
// covers every event the report counts, signed by the ledger's key.
func TestReportCarriesItsCheckpoint(t *testing.T) {
	m := openTamperLedger(t, filepath.Join(t.TempDir(), "data"))
	waitCheckpoint(t, m, uint64(len(ledgerEvents)))
	waitCaughtUp(t, m)
	code, body := get(t, m, "/v1/report?unit=004&level=ward&from=2024-03-01&to=2024-03-31")
	var rep struct {
		AsOfSeq    uint64           `json:"as_of_seq"`
		Checkpoint *hoso.Checkpoint `json:"checkpoint"`
	}
	if err := json.Unmarshal(body, &rep); code != http.StatusOK || err != nil {
		t.Fatalf("report: %d %s (%v)", code, body, err)
	}
	if rep.AsOfSeq != uint64(len(ledgerEvents)) || rep.Checkpoint == nil || rep.Checkpoint.Size < rep.AsOfSeq {
		t.Fatalf("report at seq %d with checkpoint %+v, want one covering it", rep.AsOfSeq, rep.Checkpoint)
	}
	verifier, err := note.NewVerifier(m.Transparency.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(rep.Checkpoint.Note), note.VerifierList(verifier)); err != nil {
		t.Errorf("the report's checkpoint does not verify: %v", err)
	}
}
