package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
)

// openLedgerMain runs Main on dir with checkpoints every so many events and no
// deadline watcher, so that a ledger and its restored copy hold the same
// events.
func openLedgerMain(t *testing.T, dir string, checkpointEvery uint64) *Main {
	t.Helper()
	m := NewMain()
	m.Config.DataDir = dir
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "error"
	m.Config.CheckpointEvery = checkpointEvery
	m.Config.DeadlineInterval = 0
	m.Now = func() time.Time { return testNow }
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// simulatedLedger imports a simulated history into a new data directory,
// its stream in 16 subject buckets, and serves it until its tree and read model have caught up: it returns
// the running Main and the simulator's summary.
func simulatedLedger(t *testing.T, dir string) (*Main, string) {
	t.Helper()
	data := filepath.Join(dir, "data")
	sumPath := filepath.Join(dir, "summary.json")
	ndjson, _, err := runCmd(t, "", "simulate", "--unit", "004", "--from", "2024-01-01", "--to", "2024-02-29",
		"--dossiers", "300", "--seed", "3", "--late", "0.1", "--level", "ward", "--summary", sumPath)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := runCmd(t, ndjson, "import", "--data", data, "--subject-buckets", "16", "-"); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	m := openLedgerMain(t, data, 100)
	waitCaughtUp(t, m)
	return m, sumPath
}

func wardReport(t *testing.T, m *Main) *projections.Report {
	t.Helper()
	rep, err := m.DB.Report(context.Background(), m.Units, projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2024-01-01", To: "2024-02-29"})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A backup of a stopped ledger restored into a fresh data directory
// verifies against the checkpoint an auditor kept, and served it gives the
// same reports and the same latest checkpoint, then goes on signing with
// the same key. A backup of the running ledger through NATS checks too.
// keptLedger is a simulated ledger with what an auditor keeps of it: its
// latest checkpoint, which covers the whole stream, also in a file, and
// its ward report.
type keptLedger struct {
	m      *Main
	last   uint64
	kept   hoso.Checkpoint
	file   string
	report *projections.Report
}

func simulatedKeptLedger(t *testing.T, dir string) keptLedger {
	t.Helper()
	k := keptLedger{file: filepath.Join(dir, "kept.note")}
	k.m, _ = simulatedLedger(t, dir)
	var err error
	if k.last, err = k.m.Store.LastSeq(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k.kept = waitCheckpoint(t, k.m, k.last); k.kept.Size != k.last {
		t.Fatalf("latest checkpoint %d, stream %d", k.kept.Size, k.last)
	}
	writeFile(t, k.file, []byte(k.kept.Note))
	if k.report = wardReport(t, k.m); k.report.Total.Received == 0 || k.report.AsOfSeq != k.last {
		t.Fatalf("report of the ledger: %+v", k.report.Total)
	}
	return k
}

func TestBackupRestoreIntoFreshLedger(t *testing.T) {
	dir := t.TempDir()
	k := simulatedKeptLedger(t, dir)
	m, last, kept, keptFile, before := k.m, k.last, k.kept, k.file, k.report

	// Principals: the first admin, a desk, and a revoked desk.
	data := m.Config.DataDir
	admin, err := readTokenFile(filepath.Join(data, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	deskToken, err := m.Tokens.CreateToken(context.Background(), hoso.Principal{Name: "desk-00127", Role: hoso.RoleDesk, Unit: "00127"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Tokens.CreateToken(context.Background(), hoso.Principal{Name: "desk-revoked", Role: hoso.RoleDesk}); err != nil {
		t.Fatal(err)
	}
	if err := m.Tokens.Revoke(context.Background(), "desk-revoked"); err != nil {
		t.Fatal(err)
	}

	// A running ledger is backed up through NATS with the ledger's role.
	live := filepath.Join(dir, "live-backup")
	out, errOut, err := runCmd(t, "", "backup", "--nats-url", m.Store.ClientURL(), "--nats-creds", m.Store.LedgerCredentials(),
		"--key", filepath.Join(data, "checkpoint.key.pub"), live)
	if err != nil || !strings.Contains(out, "backup: ") {
		t.Fatalf("live backup: %v\n%s%s", err, out, errOut)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	backup := filepath.Join(dir, "backup")
	out, errOut, err = runCmd(t, "", "backup", "--data", data, backup)
	if err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "latest checkpoint: size ") || strings.Contains(out, "not covered") {
		t.Errorf("backup of a stopped ledger:\n%s", out)
	}

	for _, b := range []string{backup, live} {
		restored := filepath.Join(t.TempDir(), "data")
		out, errOut, err = runCmd(t, "", "restore", "--data", restored, "--checkpoint-key", filepath.Join(data, "checkpoint.key"), b)
		if err != nil || !strings.Contains(out, "backup checked: ") || !strings.Contains(out, "ok: ") {
			t.Fatalf("restore %s: %v\n%s%s", filepath.Base(b), err, out, errOut)
		}
		t.Logf("hoso restore of %s:\n%s", filepath.Base(b), out)
		if out, err := verify(t, "--data", restored, "--checkpoint", keptFile); err != nil {
			t.Fatalf("verify the restored ledger of %s: %v\n%s", filepath.Base(b), err, out)
		}
		if b == live {
			continue
		}

		r := openLedgerMain(t, restored, 100)
		// The principals came with it: the admin's token of the backed-up
		// ledger works, the desk made before the backup too, and the
		// revoked name is still taken.
		for _, tok := range []string{admin, deskToken} {
			if _, err := r.Tokens.Authenticate(context.Background(), tok); err != nil {
				t.Fatalf("a token of the backed-up ledger, after restore: %v", err)
			}
		}
		if _, err := r.Tokens.CreateToken(context.Background(), hoso.Principal{Name: "desk-revoked", Role: hoso.RoleDesk}); hoso.ErrorCode(err) != hoso.ECONFLICT {
			t.Fatalf("a revoked name after restore: %v, want ECONFLICT", err)
		}
		if _, err := os.Stat(filepath.Join(restored, AdminTokenFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the restored ledger made a new first admin: %v", err)
		}
		if r.Store.Buckets() != 16 {
			t.Fatalf("restored stream in %d buckets, want the backup's 16", r.Store.Buckets())
		}
		waitCaughtUp(t, r)
		cp, err := r.Transparency.LatestCheckpoint(context.Background())
		if err != nil || cp.Size != kept.Size || !bytes.Equal(cp.Root, kept.Root) || cp.Origin != kept.Origin {
			t.Fatalf("restored latest checkpoint %d %x %q (%v), want %d %x %q", cp.Size, cp.Root, cp.Origin, err, kept.Size, kept.Root, kept.Origin)
		}
		if after := wardReport(t, r); !reflect.DeepEqual(after, before) {
			a, _ := json.Marshal(after)
			bb, _ := json.Marshal(before)
			t.Fatalf("restored report differs:\n%s\nwant\n%s", a, bb)
		}
		// The restored ledger goes on: a new event, a new checkpoint of the
		// same chain.
		res, err := r.Events.Append(context.Background(), decodeEvent(t, `{"type":"received","dossier":"after-restore","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`))
		if err != nil || res.Seq != last+1 {
			t.Fatalf("append after restore: %+v %v", res, err)
		}
		if cp := waitCheckpoint(t, r, last+1); cp.Origin != kept.Origin {
			t.Fatalf("checkpoint after restore signed by %q", cp.Origin)
		}
	}
}

func decodeEvent(t *testing.T, js string) *hoso.Event {
	t.Helper()
	e, err := hoso.DecodeEvent([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// copyBackup copies a backup directory, changing one of its files.
func copyBackup(t *testing.T, from, file string, change func([]byte) []byte) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "backup")
	if err := os.Mkdir(to, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{backupEvents, backupCheckpoints, backupPrincipals, backupManifestName} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == file {
			b = change(b)
		}
		writeFile(t, filepath.Join(to, name), b)
	}
	return to
}

// dropLastEvent writes the backup's events.bin again without its last
// event.
func dropLastEvent(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, backupEvents)
	type record struct {
		seq  uint64
		data []byte
	}
	var records []record
	if _, err := readBackupFile(path, "events", func(seq uint64, data []byte) error {
		records = append(records, record{seq, bytes.Clone(data)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w, err := createBackupFile(path, "events")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records[:len(records)-1] {
		if err := w.write(r.seq, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// setManifestDigest makes the manifest's digest of events.bin that of the
// changed file, as someone covering their tracks would.
func setManifestDigest(t *testing.T, dir string) {
	t.Helper()
	sum, err := readBackupFile(filepath.Join(dir, backupEvents), "events", func(uint64, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, backupManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var man backupManifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	man.EventsSHA256 = sum
	b, _ = json.Marshal(man)
	writeFile(t, filepath.Join(dir, backupManifestName), b)
}

// A backup changed in any way is refused before anything is written, with
// exit status 1 and a message saying what does not match; a ledger that
// is not empty is not restored into.
func TestRestoreRefusesTamperedBackup(t *testing.T) {
	dir := t.TempDir()
	data := buildLedgerEvents(t, filepath.Join(dir, "data"))
	backup := filepath.Join(dir, "backup")
	if out, errOut, err := runCmd(t, "", "backup", "--data", data, backup); err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("%q not in the backup", old)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}
	changed := copyBackup(t, backup, backupEvents, replace(`"channel":"postal"`, `"channel":"online"`))
	covered := copyBackup(t, backup, backupEvents, replace(`"channel":"postal"`, `"channel":"online"`))
	setManifestDigest(t, covered)
	// Untouched, it restores (one subject per dossier) and verifies.
	if out, errOut, err := runCmd(t, "", "restore", "--data", filepath.Join(dir, "restored"), backup); err != nil || !strings.Contains(out, "ok: 6 events of 3 dossiers") {
		t.Fatalf("restore of the untouched backup: %v\n%s%s", err, out, errOut)
	}
	for _, tt := range []struct {
		name, backup, want string
	}{
		{"event changed", changed, "events 1..4 do not hash to the root signed by checkpoint 4"},
		{"event changed, digest rewritten", covered, "events 1..4 do not hash to the root signed by checkpoint 4"},
		{"event removed", dropLastEvent(t, copyBackup(t, backup, "", nil)), "checkpoint 6 (checkpoints.bin seq 3) signs 6 events; events.bin holds 5: events missing"},
		{"manifest count changed", copyBackup(t, backup, backupManifestName, replace(`"events": 6`, `"events": 7`)), "events.bin: 6 events with SHA-256"},
		{"checkpoint changed", copyBackup(t, backup, backupCheckpoints, replace("\n6\n", "\n7\n")), "checkpoints.bin: checkpoint of seq 3: "},
		{"principal renamed", copyBackup(t, backup, backupPrincipals, replace(`"key":"p.admin"`, `"key":"p.admim"`)), "principals.bin: record 1: p.admim: the key does not match its record"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "data")
			out, errOut, err := runCmd(t, "", "restore", "--data", target, tt.backup)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "backup refused, damaged or altered: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("restore: %v, want exit status 1 with %q\n%s%s", err, tt.want, out, errOut)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore wrote %s: %v", target, err)
			}
		})
	}

	// Into a ledger that has events: refused, exit status 2.
	out, errOut, err := runCmd(t, "", "restore", "--data", buildLedgerEvents(t, filepath.Join(dir, "other")), backup)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "restore only into an empty ledger") {
		t.Fatalf("restore into a ledger with events: %v\n%s%s", err, out, errOut)
	}
}

// buildLedgerEvents leaves a closed ledger of ledgerEvents, appended
// through the counted service, with checkpoints every two events.
func buildLedgerEvents(t *testing.T, dir string) string {
	t.Helper()
	m := openLedgerMain(t, dir, 2)
	for i, js := range ledgerEvents {
		if _, err := m.Events.Append(context.Background(), decodeEvent(t, js)); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}
