package projections_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"pgregory.net/rapid"
)

var errInjected = errors.New("injected failure")

// TestCrashMidBatch fails a batch between two of its statements, by an
// error or by cancelling its context, then reopens the file and applies
// the stream again from applied_seq+1: nothing is lost or counted twice.
func TestCrashMidBatch(t *testing.T) {
	u, _ := registry(t)
	dir := t.TempDir()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		events := genHistory(rt)
		msgs := toMsgs(rt, events)
		batches := splitBatches(msgs, rapid.IntRange(1, 30).Draw(rt, "batch"))
		failAt := rapid.IntRange(0, len(batches)-1).Draw(rt, "fail_batch")
		stage := rapid.SampledFrom(projections.TestStages).Draw(rt, "stage")
		cancelMode := rapid.Bool().Draw(rt, "cancel")
		n++
		path := filepath.Join(dir, fmt.Sprintf("c%d.db", n))

		db, err := projections.Open(path)
		if err != nil {
			rt.Fatal(err)
		}
		p := projections.NewProjector(db, u)
		var want uint64
		for i, b := range batches {
			ctx, cancel := context.WithCancel(context.Background())
			if i == failAt {
				projections.SetTestHook(p, func(_ context.Context, s string) error {
					if s != stage {
						return nil
					}
					if cancelMode {
						cancel() // the next statement, or the commit, fails
						return nil
					}
					return errInjected
				})
			}
			err := p.Apply(ctx, b)
			cancel()
			if i == failAt {
				if err == nil {
					rt.Fatalf("batch %d with a failure at %s applied", i, stage)
				}
				break
			}
			if err != nil {
				rt.Fatal(err)
			}
			want = b[len(b)-1].Seq
		}
		if got := p.AppliedSeq(); got != want {
			rt.Fatalf("after the failure the projector says seq %d, want %d", got, want)
		}
		if err := db.Close(); err != nil {
			rt.Fatal(err)
		}

		db, err = projections.Open(path)
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		p = projections.NewProjector(db, u)
		if got := p.AppliedSeq(); got != want {
			rt.Fatalf("reopened at seq %d, want %d", got, want)
		}
		// Re-apply everything in new batches; what was applied is skipped.
		for _, b := range splitBatches(msgs, rapid.IntRange(1, 30).Draw(rt, "batch2")) {
			if err := p.Apply(context.Background(), b); err != nil {
				rt.Fatal(err)
			}
		}
		checkDossiers(rt, db, events)
		for _, q := range []projections.ReportQuery{
			{Unit: "01", Level: hoso.LevelWard, From: "2020-01-01", To: "2020-03-31"},
			{Unit: "01", Level: hoso.LevelDistrict, From: "2020-02-15", To: "2020-06-30"},
			{Unit: "004", From: "2019-12-01", To: "2020-12-31", By: projections.ByProcedure},
		} {
			checkReport(rt, db, events, q)
		}
	})
}

func splitBatches[T any](msgs []T, size int) [][]T {
	var out [][]T
	for len(msgs) > 0 {
		n := min(size, len(msgs))
		out = append(out, msgs[:n])
		msgs = msgs[n:]
	}
	return out
}

// crashHistory is the history both sides of TestCrashKilled use.
// It is the first drawn history long enough for several batches.
func crashHistory() []*hoso.Event {
	gen := rapid.Custom(func(t *rapid.T) []*hoso.Event { return genHistory(t) })
	for seed := 1; ; seed++ {
		if h := gen.Example(seed); len(h) > 3*crashBatch {
			return h
		}
	}
}

// TestCrashKilled kills a process in the middle of a batch's transaction,
// at each stage, and checks that the file it leaves resumes correctly.
func TestCrashKilled(t *testing.T) {
	if path := os.Getenv("HOSO_CRASH_DB"); path != "" {
		crashChild(t, path, os.Getenv("HOSO_CRASH_STAGE"))
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	u, _ := registry(t)
	events := crashHistory()
	msgs := toMsgs(t, events)
	for _, stage := range projections.TestStages {
		t.Run(stage, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "read.db")
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKilled$")
			cmd.Env = append(os.Environ(), "HOSO_CRASH_DB="+path, "HOSO_CRASH_STAGE="+stage)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 {
				t.Fatalf("child: %v\n%s", err, out)
			}
			db, err := projections.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			p := projections.NewProjector(db, u)
			// The child committed the first batch and died in the second.
			if got, want := p.AppliedSeq(), uint64(crashBatch); got != want {
				t.Fatalf("resumed at seq %d, want %d", got, want)
			}
			if err := p.Apply(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
			checkDossiers(t, db, events)
			checkReport(t, db, events, projections.ReportQuery{Unit: "01", Level: hoso.LevelWard, From: "2020-01-15", To: "2020-04-30"})
		})
	}
}

const crashBatch = 20

func crashChild(t *testing.T, path, stage string) {
	u, _ := registry(t)
	msgs := toMsgs(t, crashHistory())
	db, err := projections.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p := projections.NewProjector(db, u)
	if err := p.Apply(context.Background(), msgs[:crashBatch]); err != nil {
		t.Fatal(err)
	}
	projections.SetTestHook(p, func(_ context.Context, s string) error {
		if s == stage {
			os.Exit(3) // no rollback, no close: as a crash
		}
		return nil
	})
	err = p.Apply(context.Background(), msgs)
	t.Fatalf("the second batch did not reach stage %s: %v", stage, err)
}
