package projections_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"pgregory.net/rapid"
)

// TestBulkLoadMatchesNaive loads random histories the way a rebuild does
// (counts in memory, months written once the stream is past them, counts
// that arrive for written days added at the end, returned and withdrawn
// dossiers written as they close, indexes made at the end) and checks the
// reports against the naive recomputation and the file against a
// projection applied batch by batch, row for row.
func TestBulkLoadMatchesNaive(t *testing.T) {
	u, _ := registry(t)
	dir := t.TempDir()
	n, spilled, returnedAfter := 0, 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		events := genHistory(rt)
		msgs := toMsgs(t, events)
		n++
		bulkPath := filepath.Join(dir, fmt.Sprintf("bulk%d.db", n))
		load, err := projections.NewBulkLoader(ctx, u, bulkPath)
		if err != nil {
			rt.Fatal(err)
		}
		load.SetClosedBatch(rapid.IntRange(1, 20).Draw(rt, "closed_batch"))
		// From the default to writing every resolved dossier at once, so
		// that returns after the spill are common.
		load.SetSpillAfterDays(rapid.SampledFrom([]int{30, 5, 0}).Draw(rt, "spill_after_days"))
		livePath := filepath.Join(dir, fmt.Sprintf("live%d.db", n))
		live, err := projections.Open(livePath)
		if err != nil {
			rt.Fatal(err)
		}
		defer live.Close()
		p := projections.NewProjector(live, u)
		for i := 0; i < len(msgs); {
			end := min(len(msgs), i+rapid.IntRange(1, 60).Draw(rt, "batch"))
			if err := load.Apply(ctx, msgs[i:end]); err != nil {
				rt.Fatal(err)
			}
			if err := p.Apply(ctx, msgs[i:end]); err != nil {
				rt.Fatal(err)
			}
			i = end
		}
		s, r := load.Spilled()
		spilled, returnedAfter = spilled+s, returnedAfter+r
		if err := load.Finish(ctx); err != nil {
			rt.Fatal(err)
		}
		db, err := projections.Open(bulkPath)
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		if got, err := db.AppliedSeq(ctx); err != nil || got != uint64(len(msgs)) {
			rt.Fatalf("applied seq %d, %v; want %d", got, err, len(msgs))
		}
		checkDossiers(rt, db, events)
		sameTables(rt, bulkPath, livePath)
		for range 3 {
			a := vn(2019, 12, 20, 0, 0).AddDate(0, 0, rapid.IntRange(0, 260).Draw(rt, "from"))
			b := a.AddDate(0, 0, rapid.IntRange(0, 400).Draw(rt, "days"))
			q := projections.ReportQuery{
				Unit:  rapid.SampledFrom([]string{"", "01", "004"}).Draw(rt, "unit"),
				Level: hoso.LevelWard, From: a.Format(time.DateOnly), To: b.Format(time.DateOnly),
			}
			if q.Unit == "" {
				q.Level = hoso.LevelProvince
			}
			if rapid.Bool().Draw(rt, "by_procedure") {
				q.By = projections.ByProcedure
			}
			checkReport(rt, db, events, q)
		}
	})
	// Resolved dossiers written before their return, then returned.
	if spilled == 0 || returnedAfter == 0 {
		t.Fatalf("%d dossiers spilled while resolved, %d of them returned after: the case went untested", spilled, returnedAfter)
	}
}

// sameTables compares the aggregate tables (rows whose counters are all
// zero aside: they add nothing) and the dossiers' indexes of two files.
func sameTables(t rapid.TB, a, b string) {
	t.Helper()
	c, err := sql.Open("sqlite3", a+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	if _, err := c.Exec(`ATTACH DATABASE ? AS other`, b); err != nil {
		t.Fatal(err)
	}
	for table, nonZero := range map[string]string{
		"flow":          "received_online + received_direct + received_postal + resolved_early + resolved_on_time + resolved_late + withdrawn",
		"flow_proc":     "received_online + received_direct + received_postal + resolved_early + resolved_on_time + resolved_late + withdrawn",
		"stock":         "abs(open) + abs(paused) + abs(overdue)",
		"stock_proc":    "abs(open) + abs(paused) + abs(overdue)",
		"transfer":      "n",
		"transfer_proc": "n",
	} {
		var diff int
		q := fmt.Sprintf(`SELECT count(*) FROM (
			SELECT * FROM (SELECT * FROM main.%[1]s WHERE %[2]s != 0 EXCEPT SELECT * FROM other.%[1]s WHERE %[2]s != 0)
			UNION ALL
			SELECT * FROM (SELECT * FROM other.%[1]s WHERE %[2]s != 0 EXCEPT SELECT * FROM main.%[1]s WHERE %[2]s != 0))`, table, nonZero)
		if err := c.QueryRow(q).Scan(&diff); err != nil {
			t.Fatal(err)
		}
		if diff != 0 {
			t.Fatalf("table %s: %d rows differ between %s and %s", table, diff, a, b)
		}
	}
	var ia, ib string
	q := `SELECT group_concat(sql, ';') FROM (SELECT sql FROM %s.sqlite_schema WHERE type = 'index' AND tbl_name = 'dossiers' AND sql IS NOT NULL ORDER BY name)`
	if err := c.QueryRow(fmt.Sprintf(q, "main")).Scan(&ia); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(fmt.Sprintf(q, "other")).Scan(&ib); err != nil {
		t.Fatal(err)
	}
	if ia != ib || ia == "" {
		t.Fatalf("dossier indexes:\n%s\nwant:\n%s", ia, ib)
	}
}
