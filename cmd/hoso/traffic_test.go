package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/hoso-ledger/hoso/simulate"
)

// runCmd runs the binary's command line in process.
func runCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// waitCaughtUp waits until the projection has applied the whole stream.
func waitCaughtUp(t *testing.T, m *Main) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for m.Projector.CaughtUp(ctx) != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("projection did not catch up: %v", m.Projector.CaughtUp(context.Background()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readSummary(t *testing.T, path string) *simulate.Summary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s simulate.Summary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// compareReport checks a report against the simulator's own counts, row by
// row and in total.
// reportMatches runs hoso report over a data directory, by district of Hà
// Nội over the summary's period, and compares it with the simulator's counts.
func reportMatches(t *testing.T, data string, sum *simulate.Summary) {
	t.Helper()
	out, _, err := runCmd(t, "", "report", "--data", data, "--unit", "01", "--level", "district",
		"--from", sum.From, "--to", sum.To, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep projections.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	compareReport(t, &rep, sum)
}

func compareReport(t *testing.T, rep *projections.Report, sum *simulate.Summary) {
	t.Helper()
	pick := func(r *hoso.ReportRow) simulate.Counts {
		return simulate.Counts{
			Received: r.Received, ReceivedOnline: r.ReceivedOnline, ReceivedDirect: r.ReceivedDirect, ReceivedPostal: r.ReceivedPostal,
			Resolved: r.Resolved, ResolvedEarly: r.ResolvedEarly, ResolvedOnTime: r.ResolvedOnTime, ResolvedLate: r.ResolvedLate,
			Withdrawn: r.Withdrawn, Pending: r.Pending,
		}
	}
	if len(rep.Rows) != len(sum.Rows) {
		t.Fatalf("report has %d rows, the simulator %d", len(rep.Rows), len(sum.Rows))
	}
	for i := range rep.Rows {
		if rep.Rows[i].Unit != sum.Rows[i].Unit || pick(&rep.Rows[i]) != sum.Rows[i].Counts {
			t.Errorf("row %s:\nreport    %+v\nsimulated %+v", rep.Rows[i].Unit, pick(&rep.Rows[i]), sum.Rows[i].Counts)
		}
	}
	if got := pick(&rep.Total); got != sum.Total {
		t.Errorf("total:\nreport    %+v\nsimulated %+v", got, sum.Total)
	}
	if sum.Total.Received == 0 || sum.Total.ResolvedLate == 0 || sum.Total.Pending == 0 || sum.Total.Withdrawn == 0 {
		t.Errorf("the simulation is too thin to compare: %+v", sum.Total)
	}
}

// TestSimulateImportReport: hoso simulate | hoso import - then the report
// equals the simulator's own counts; a re-import changes nothing; a bad
// line is reported with its number and does not stop the rest.
func TestSimulateImportReport(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sumPath := filepath.Join(dir, "summary.json")
	ndjson, _, err := runCmd(t, "", "simulate", "--unit", "01", "--from", "2024-01-01", "--to", "2024-04-30",
		"--dossiers", "1500", "--seed", "5", "--late", "0.1", "--level", "district", "--summary", sumPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := readSummary(t, sumPath)
	lines := strings.Split(strings.TrimSpace(ndjson), "\n")
	if int64(len(lines)) != sum.Events {
		t.Fatalf("%d lines, summary says %d events", len(lines), sum.Events)
	}
	// A bad line and a blank line in the middle.
	bad := `{"type":"received","dossier":"X-1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"fax","days":3}`
	input := strings.Join(lines[:100], "\n") + "\n" + bad + "\n\n" + strings.Join(lines[100:], "\n") + "\n"

	out, _, err := runCmd(t, input, "import", "--data", data, "--batch", "256", "-")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("import with a bad line: err %v, want exit status 1", err)
	}
	if !strings.Contains(out, "line 101: invalid: channel:") {
		t.Fatalf("the rejected line is not named:\n%s", out)
	}
	if want := "imported " + itoa(len(lines)+1) + " lines: " + itoa(len(lines)) + " appended, 0 duplicates"; !strings.Contains(out, want) {
		t.Fatalf("want %q in:\n%s", want, out)
	}
	// Again: idempotent, nothing appended.
	out, _, _ = runCmd(t, input, "import", "--data", data, "-")
	if want := "0 appended, " + itoa(len(lines)) + " duplicates"; !strings.Contains(out, want) {
		t.Fatalf("re-import: want %q in:\n%s", want, out)
	}

	// hoso report over the data directory: the import brought its read
	// model up to date.
	reportMatches(t, data, sum)

	// The same through a running server's read model, at ward level.
	m := openMain(t, data)
	waitCaughtUp(t, m)
	wards, err := m.DB.Report(context.Background(), m.Units, projections.ReportQuery{Unit: "01", Level: hoso.LevelWard, From: sum.From, To: sum.To})
	if err != nil {
		t.Fatal(err)
	}
	var wardReceived int64
	for _, r := range wards.Rows {
		if !r.Own {
			wardReceived += r.Received
		}
	}
	if byWard := sum.Total.Received; wardReceived >= byWard || wardReceived == 0 || wards.Total.Received != byWard {
		t.Errorf("wards received %d of the districts' %d (the table %d): ward desks should take most, the own rows of the district and city desks the rest",
			wardReceived, byWard, wards.Total.Received)
	}
}

// TestImportToRunningServer sends over HTTP and NATS, resumes with
// --from-line, and simulates straight into the server.
func TestImportToRunningServer(t *testing.T) {
	dir := t.TempDir()
	m := NewMain()
	m.Config.DataDir = filepath.Join(dir, "data")
	m.Config.HTTPAddr = "127.0.0.1:0"
	m.Config.NATSListen = "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	// The stream's length is checked below: no overdue events meanwhile.
	m.Config.DeadlineInterval = 0
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ndjson, _, err := runCmd(t, "", "simulate", "--unit", "004", "--from", "2024-01-01", "--to", "2024-02-29", "--dossiers", "200", "--seed", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(ndjson), "\n")
	half := len(lines) / 2
	out, _, err := runCmd(t, strings.Join(lines[:half], "\n"), "import", "--url", m.HTTP.URL(), "--token-file", tokenFileOf(t, m, testDesk), "--batch", "50", "-")
	if err != nil || !strings.Contains(out, itoa(half)+" appended") {
		t.Fatalf("HTTP import: %v\n%s", err, out)
	}
	// Resume over NATS at the first line not yet imported, the desk
	// connected by its token alone, on its own subject.
	out, _, err = runCmd(t, ndjson, "import", "--nats-url", m.Store.ClientURL(), "--token-file", tokenFileOf(t, m, testDesk), "--from-line", itoa(half+1), "-")
	if err != nil || !strings.Contains(out, itoa(len(lines)-half)+" appended, 0 duplicates") {
		t.Fatalf("NATS import: %v\n%s", err, out)
	}
	last, err := m.Store.LastSeq(context.Background())
	if err != nil || last != uint64(len(lines)) {
		t.Fatalf("stream holds %d events (%v), want %d", last, err, len(lines))
	}
	var lastEvent struct {
		Dossier string `json:"dossier"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &lastEvent); err != nil {
		t.Fatal(err)
	}
	if evs, err := m.Store.LoadDossier(context.Background(), lastEvent.Dossier); err != nil || evs[len(evs)-1].By != testDesk.Name {
		t.Fatalf("the last event imported over NATS: %v, want by %s", err, testDesk.Name)
	}

	// simulate --url: another seed, paced, straight into the server.
	sumPath := filepath.Join(dir, "summary.json")
	_, stderr, err := runCmd(t, "", "simulate", "--unit", "004", "--from", "2024-01-01", "--to", "2024-02-29", "--dossiers", "100",
		"--seed", "3", "--url", m.HTTP.URL(), "--token-file", tokenFileOf(t, m, testDesk), "--rate", "100000", "--level", "district", "--summary", sumPath)
	if err != nil {
		t.Fatalf("simulate --url: %v\n%s", err, stderr)
	}
	sum := readSummary(t, sumPath)
	last2, _ := m.Store.LastSeq(context.Background())
	if last2 != last+uint64(sum.Events) {
		t.Fatalf("stream at %d after simulate, want %d", last2, last+uint64(sum.Events))
	}
	// The same run again over NATS, as the shared desk role with the token
	// in each request: every event is a duplicate, nothing is appended.
	_, stderr, err = runCmd(t, "", "simulate", "--unit", "004", "--from", "2024-01-01", "--to", "2024-02-29", "--dossiers", "100",
		"--seed", "3", "--nats-url", m.Store.ClientURL(), "--nats-nkey", m.Store.DeskCredentials(), "--token-file", tokenFileOf(t, m, testDesk), "--batch", "64")
	if err != nil || !strings.Contains(stderr, "0 appended, "+strconv.FormatInt(sum.Events, 10)+" duplicates") {
		t.Fatalf("simulate --nats-url again: %v\n%s", err, stderr)
	}
	if last3, _ := m.Store.LastSeq(context.Background()); last3 != last2 {
		t.Fatalf("stream moved from %d to %d on a re-run", last2, last3)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzDecodeBatchAnswer: whatever a server answers, the importer either
// gets one result per line sent or an error; it never panics.
func FuzzDecodeBatchAnswer(f *testing.F) {
	f.Add([]byte(`{"results":[{"dossier":"A","version":1,"seq":1,"duplicate":false},{"error":{"code":"invalid","message":"at: required","field":"at"}}]}`), 2)
	f.Add([]byte(`{"error":{"code":"too_large","message":"body over 16 MiB"}}`), 1)
	f.Add([]byte(`{"results":[{"error":{"code":"internal","message":"stream down"}}]}`), 1)
	f.Add([]byte(`[]`), 0)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1<<12 {
			return
		}
		results, err := decodeBatchAnswer(body, n)
		if err == nil && len(results) != n {
			t.Fatalf("%d results for %d lines without an error", len(results), n)
		}
		for _, r := range results {
			if r.Err != nil && r.Err.Code == "internal" {
				t.Fatal("an internal error passed as a rejected line")
			}
		}
	})
}

// A history imported into a new data directory laid out in subject
// buckets: the read model, missing for a ledger of more than
// rebuildFromEventsAtLeast events, is built from the stream, reports what
// the simulator counted, and a second import appends nothing.
func TestImportIntoSubjectBuckets(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sumPath := filepath.Join(dir, "summary.json")
	ndjson, _, err := runCmd(t, "", "simulate", "--unit", "01", "--from", "2024-01-01", "--to", "2024-06-30",
		"--dossiers", "4000", "--seed", "7", "--level", "district", "--summary", sumPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := readSummary(t, sumPath)
	if sum.Events < rebuildFromEventsAtLeast {
		t.Fatalf("%d events: too few to build the read model by a rebuild", sum.Events)
	}
	out, stderr, err := runCmd(t, ndjson, "import", "--data", data, "--subject-buckets", "64", "-")
	if err != nil {
		t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
	}
	if want := "imported " + itoa(int(sum.Events)) + " lines: " + itoa(int(sum.Events)) + " appended, 0 duplicates"; !strings.Contains(out, want) {
		t.Fatalf("want %q in:\n%s", want, out)
	}
	reportMatches(t, data, sum)

	out, _, err = runCmd(t, ndjson, "import", "--data", data, "-")
	if want := "0 appended, " + itoa(int(sum.Events)) + " duplicates"; err != nil || !strings.Contains(out, want) {
		t.Fatalf("re-import: %v, want %q in:\n%s", err, want, out)
	}
	m := openMain(t, data)
	if m.Store.Buckets() != 64 {
		t.Errorf("the served stream has %d buckets, want the imported 64", m.Store.Buckets())
	}
	// The import left its dossier index's snapshot: the server read none
	// of the stream to build it.
	if got := m.Store.IndexSnapshotSeq(); got != uint64(sum.Events) {
		t.Errorf("the server loaded the dossier index's snapshot at seq %d, want the import's %d", got, sum.Events)
	}
}
