package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"pgregory.net/rapid"
)

// TestReportMatchesNaive is the projection's main property: for random
// valid histories applied in random batches (with replays), every report
// equals the one computed straight from the events, and balances.
func TestReportMatchesNaive(t *testing.T) {
	u, _ := registry(t)
	dir := t.TempDir()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		events := genHistory(rt)
		msgs := toMsgs(t, events)
		n++
		db, err := projections.Open(filepath.Join(dir, fmt.Sprintf("p%d.db", n)))
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		p := projections.NewProjector(db, u, projections.WithCacheSize(rapid.IntRange(2, 64).Draw(rt, "cache")))
		for i := 0; i < len(msgs); {
			size := rapid.IntRange(1, 40).Draw(rt, "batch")
			// Sometimes start the batch earlier: replays are skipped.
			start := max(0, i-rapid.IntRange(0, 3).Draw(rt, "replay"))
			end := min(len(msgs), i+size)
			if err := p.Apply(ctx, msgs[start:end]); err != nil {
				rt.Fatal(err)
			}
			i = end
			// Reports between batches, on one day: the DB's unit mapping
			// for that day must follow units_seen as it grows.
			if rapid.IntRange(0, 3).Draw(rt, "report_now") == 0 {
				checkReport(rt, db, events[:end], projections.ReportQuery{
					Unit: "01", Level: hoso.LevelWard, From: "2019-12-20", To: "2020-12-31"})
			}
		}
		if got := p.AppliedSeq(); got != uint64(len(msgs)) {
			rt.Fatalf("applied seq %d, want %d", got, len(msgs))
		}
		checkDossiers(rt, db, events)
		scopes := []struct {
			unit  string
			level hoso.Level
		}{
			{"004", hoso.LevelWard}, {"002", hoso.LevelWard}, {"01", hoso.LevelDistrict},
			{"01", hoso.LevelWard}, {"", hoso.LevelProvince}, {"004", ""}, {"00127", ""},
			{"004", hoso.LevelOffice}, {"01", hoso.LevelOffice}, {"", hoso.LevelDistrict}, {"LB-MOTCUA", ""},
		}
		for range 4 {
			s := rapid.SampledFrom(scopes).Draw(rt, "scope")
			first := vn(2019, 12, 20, 0, 0)
			a := first.AddDate(0, 0, rapid.IntRange(0, 260).Draw(rt, "from"))
			b := a.AddDate(0, 0, rapid.IntRange(0, 200).Draw(rt, "days"))
			q := projections.ReportQuery{Unit: s.unit, Level: s.level, From: a.Format(time.DateOnly), To: b.Format(time.DateOnly)}
			if rapid.Bool().Draw(rt, "by_procedure") {
				q.By = projections.ByProcedure
			}
			checkReport(rt, db, events, q)
		}
	})
}

// checkDossiers compares every projected dossier with its fold.
func checkDossiers(t rapid.TB, db *projections.DB, events []*hoso.Event) {
	t.Helper()
	want := map[string]*hoso.Dossier{}
	for _, e := range stored(t, events) {
		if want[e.Dossier] == nil {
			want[e.Dossier] = &hoso.Dossier{}
		}
		mustApply(t, want[e.Dossier], e)
	}
	for code, w := range want {
		got, err := db.Dossier(context.Background(), code)
		if err != nil {
			t.Fatalf("dossier %s: %v", code, err)
		}
		if !reflect.DeepEqual(got, w) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(w)
			t.Fatalf("dossier %s:\n got %s\nwant %s", code, gj, wj)
		}
	}
}

// TestReportClassification checks the edge cases of the classification
// through the report.
func TestReportClassification(t *testing.T) {
	const ward = "00127"
	due := vn(2020, 3, 10, 17, 0)
	recv := vn(2020, 3, 2, 9, 0)
	period := projections.ReportQuery{Unit: ward, From: "2020-03-01", To: "2020-03-31"}
	type want struct{ early, onTime, late, inDeadline, overdue, paused int64 }
	tests := []struct {
		name  string
		build func(b *dossierBuilder)
		due   time.Time
		q     projections.ReportQuery
		want  want
	}{
		{"resolved on the due date at 23:59 is on time", func(b *dossierBuilder) {
			b.resolve(vn(2020, 3, 10, 23, 59))
		}, due, period, want{onTime: 1}},
		{"resolved the next day at 00:01 is late", func(b *dossierBuilder) {
			b.resolve(vn(2020, 3, 11, 0, 1))
		}, due, period, want{late: 1}},
		{"resolved the day before the due date is early", func(b *dossierBuilder) {
			b.resolve(vn(2020, 3, 9, 23, 59))
		}, due, period, want{early: 1}},
		{"extended, resolved after the statutory due but before the promise, is late", func(b *dossierBuilder) {
			b.extend(vn(2020, 3, 9, 10, 0), vn(2020, 3, 20, 17, 0))
			b.resolve(vn(2020, 3, 15, 10, 0))
		}, due, period, want{late: 1}},
		{"a supplement that moved the due: resolved after the first due, before the new one, is early", func(b *dossierBuilder) {
			b.pause(vn(2020, 3, 5, 10, 0))
			b.resume(vn(2020, 3, 12, 10, 0), vn(2020, 3, 20, 17, 0))
			b.resolve(vn(2020, 3, 18, 10, 0))
		}, due, period, want{early: 1}},
		{"overdue then supplement: the new due counts", func(b *dossierBuilder) {
			b.overdue()
			b.pause(vn(2020, 3, 11, 10, 0))
			b.resume(vn(2020, 3, 12, 10, 0), vn(2020, 3, 31, 17, 0))
			b.resolve(vn(2020, 3, 31, 17, 30))
		}, due, period, want{onTime: 1}},
		{"open at period end, due exactly at the end of the last day: in deadline", func(b *dossierBuilder) {},
			vn(2020, 4, 1, 0, 0), period, want{inDeadline: 1}},
		{"open at period end, due at 17:00 on the last day: overdue", func(b *dossierBuilder) {},
			vn(2020, 3, 31, 17, 0), period, want{overdue: 1}},
		{"open at period end, due the day after: in deadline", func(b *dossierBuilder) {},
			vn(2020, 4, 1, 17, 0), period, want{inDeadline: 1}},
		{"open and awaiting a supplement past its due: paused", func(b *dossierBuilder) {
			b.pause(vn(2020, 3, 5, 10, 0))
		}, due, period, want{paused: 1}},
		{"marked overdue: overdue", func(b *dossierBuilder) {
			b.overdue()
		}, due, period, want{overdue: 1}},
		{"a report ending before the due: in deadline", func(b *dossierBuilder) {},
			due, projections.ReportQuery{Unit: ward, From: "2020-03-01", To: "2020-03-09"}, want{inDeadline: 1}},
		{"a report ending on the due date, the dossier still open: overdue at the end of that day", func(b *dossierBuilder) {},
			due, projections.ReportQuery{Unit: ward, From: "2020-03-01", To: "2020-03-10"}, want{overdue: 1}},
	}
	u, _ := registry(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openDB(t)
			b := newDossier(t, "HS-1", ward, "1.001776", hoso.ChannelOnline, recv, tc.due)
			tc.build(b)
			p := projections.NewProjector(db, u)
			if err := p.Apply(context.Background(), toMsgs(t, b.events)); err != nil {
				t.Fatal(err)
			}
			rep := checkReport(t, db, b.events, tc.q)
			r := rep.Total
			got := want{r.ResolvedEarly, r.ResolvedOnTime, r.ResolvedLate, r.PendingInDeadline, r.PendingOverdue, r.PendingPaused}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v (%s)", got, tc.want, fmtRow(r))
			}
		})
	}
}

// TestReportTransfers pins down how transfers count at each level.
func TestReportTransfers(t *testing.T) {
	u, _ := registry(t)
	db, _ := openDB(t)
	at := vn(2020, 5, 4, 9, 0)
	due := vn(2020, 5, 29, 17, 0)
	events := concat(
		// Inside Long Biên: 00127 -> 00130.
		newDossier(t, "A", "00127", "1.001776", hoso.ChannelDirect, at, due).transfer(at.Add(time.Hour), "00130"),
		// Across districts: 00127 -> 00037 (Hoàn Kiếm).
		newDossier(t, "B", "00127", "1.001776", hoso.ChannelDirect, at, due).transfer(at.Add(time.Hour), "00037"),
		// Up to the district itself: 00130 -> 004.
		newDossier(t, "C", "00130", "1.003003", hoso.ChannelPostal, at, due).transfer(at.Add(time.Hour), "004"),
	)
	if err := projections.NewProjector(db, u).Apply(context.Background(), toMsgs(t, events)); err != nil {
		t.Fatal(err)
	}
	q := projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2020-05-01", To: "2020-05-31"}
	rep := checkReport(t, db, events, q)
	rows := map[string]hoso.ReportRow{}
	for _, r := range rep.Rows {
		rows[r.Unit] = r
	}
	if r := rows["00127"]; r.TransferredOut != 2 || r.Pending != 0 {
		t.Errorf("00127: %s", fmtRow(r))
	}
	if r := rows["00130"]; r.TransferredIn != 1 || r.TransferredOut != 1 || r.Pending != 1 {
		t.Errorf("00130: %s", fmtRow(r))
	}
	// C went up to the district itself: its own row, first.
	if r := rep.Rows[0]; r.Unit != "004" || !r.Own || r.Name != "Quận Long Biên (cấp quận)" || r.Level != hoso.LevelDistrict ||
		r.TransferredIn != 1 || r.Pending != 1 {
		t.Errorf("own row: %s", fmtRow(r))
	}
	q.Level = hoso.LevelDistrict
	rep = checkReport(t, db, events, q)
	if r := rep.Rows[0]; r.TransferredIn != 0 || r.TransferredOut != 1 || r.Pending != 2 || r.Received != 3 {
		t.Errorf("004 as one row: %s", fmtRow(r))
	}
	q = projections.ReportQuery{Unit: "01", Level: hoso.LevelDistrict, From: "2020-05-01", To: "2020-05-31"}
	rep = checkReport(t, db, events, q)
	if rep.Total.TransferredIn != 1 || rep.Total.TransferredOut != 1 {
		t.Errorf("Hà Nội by district: a transfer between two rows counts in both: %s", fmtRow(rep.Total))
	}
	q.Level = hoso.LevelProvince
	rep = checkReport(t, db, events, q)
	if rep.Total.TransferredIn != 0 || rep.Total.TransferredOut != 0 || rep.Total.Pending != 3 {
		t.Errorf("Hà Nội as one row: %s", fmtRow(rep.Total))
	}
	q.By = projections.ByProcedure
	q.Unit, q.Level = "004", hoso.LevelWard
	rep = checkReport(t, db, events, q)
	// By procedure over Long Biên: B left it; C went up to the
	// district's own desk and A to another ward, both inside.
	if rep.Total.TransferredOut != 1 || rep.Total.TransferredIn != 0 {
		t.Errorf("by procedure: %s", fmtRow(rep.Total))
	}
	// The levels still see C go from a ward up to the district.
	if len(rep.Levels) != 2 || rep.Levels[0].TransferredIn != 1 || rep.Levels[1].TransferredOut != 2 {
		t.Errorf("by procedure, levels: %+v", rep.Levels)
	}
}

func TestReportValidation(t *testing.T) {
	u, _ := registry(t)
	db, _ := openDB(t)
	tests := []struct {
		q     projections.ReportQuery
		field string
	}{
		{projections.ReportQuery{From: "2020-01-01"}, "to"},
		{projections.ReportQuery{To: "2020-01-01"}, "from"},
		{projections.ReportQuery{From: "2020-13-01", To: "2020-12-31"}, "from"},
		{projections.ReportQuery{From: "2020-01-01", To: "31/12/2020"}, "to"},
		{projections.ReportQuery{From: "2020-02-01", To: "2020-01-31"}, "to"},
		{projections.ReportQuery{Unit: "99999", From: "2020-01-01", To: "2020-01-31"}, "unit"},
		{projections.ReportQuery{Unit: "00127", Level: hoso.LevelDistrict, From: "2020-01-01", To: "2020-01-31"}, "level"},
		{projections.ReportQuery{Level: "county", From: "2020-01-01", To: "2020-01-31"}, "level"},
		{projections.ReportQuery{By: "month", From: "2020-01-01", To: "2020-01-31"}, "by"},
	}
	for _, tc := range tests {
		_, err := db.Report(context.Background(), u, tc.q)
		var he *hoso.Error
		if !errors.As(err, &he) || he.Code != hoso.EINVALID || he.Field != tc.field {
			t.Errorf("%+v: got %v, want an invalid error naming %s", tc.q, err, tc.field)
		}
	}
	// Every unit of the level is listed, even with nothing to count.
	rep, err := db.Report(context.Background(), u, projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2020-01-01", To: "2020-01-31"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != len(wardsLongBien)+4 || rep.Rows[0].Name == "" || rep.Total.OnTimeRate != nil {
		t.Fatalf("empty report: %d rows, first %+v", len(rep.Rows), rep.Rows[0])
	}
}

// TestReportUnitChanges: rows follow the registry on the report's last
// day; a dossier of a unit that no longer exists then counts through its
// last version, and a reused code counts for the unit that has it then.
func TestReportUnitChanges(t *testing.T) {
	u, _ := registry(t)
	db, _ := openDB(t)
	at := vn(2024, 11, 4, 9, 0)
	events := concat(
		// Phường Sài Đồng (00142, quận Long Biên) merged on 2025-01-01.
		newDossier(t, "SD", "00142", "1.001776", hoso.ChannelDirect, at, at.AddDate(0, 3, 0)),
		// 00118 was Phường Ngọc Thụy (quận Long Biên); from 2025-07-01 the
		// code is Phường Bồ Đề, directly under Hà Nội.
		newDossier(t, "NT", "00118", "1.001776", hoso.ChannelOnline, at, at.AddDate(1, 0, 0)),
	)
	if err := projections.NewProjector(db, u).Apply(context.Background(), toMsgs(t, events)); err != nil {
		t.Fatal(err)
	}
	report := func(q projections.ReportQuery) map[string]hoso.ReportRow {
		t.Helper()
		rep, err := db.Report(context.Background(), u, q)
		if err != nil {
			t.Fatal(err)
		}
		rows := map[string]hoso.ReportRow{}
		for _, r := range rep.Rows {
			if !r.Balanced() {
				t.Fatalf("%+v: %s does not balance", q, fmtRow(r))
			}
			rows[r.Unit] = r
		}
		return rows
	}
	// February 2025: Sài Đồng is gone; Long Biên holds both dossiers.
	rows := report(projections.ReportQuery{Unit: "01", Level: hoso.LevelDistrict, From: "2025-02-01", To: "2025-02-28"})
	if r := rows["004"]; r.CarriedOver != 2 || r.Pending != 2 || r.Name != "Quận Long Biên" {
		t.Errorf("Long Biên, February 2025: %s", fmtRow(r))
	}
	rows = report(projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2025-02-01", To: "2025-02-28"})
	if _, ok := rows["00142"]; ok {
		t.Error("Sài Đồng is a row after its merger")
	}
	if r := rows["00118"]; r.Pending != 1 || r.Name != "Phường Ngọc Thụy" {
		t.Errorf("Ngọc Thụy, February 2025: %s", fmtRow(r))
	}
	// August 2025: no districts; 00118 is Phường Bồ Đề under Hà Nội.
	rows = report(projections.ReportQuery{Unit: "01", Level: hoso.LevelWard, From: "2025-08-01", To: "2025-08-31"})
	if r := rows["00118"]; r.Pending != 1 || r.Name != "Phường Bồ Đề" {
		t.Errorf("00118, August 2025: %s", fmtRow(r))
	}
	if rows := report(projections.ReportQuery{Unit: "01", From: "2025-08-01", To: "2025-08-31"}); rows["01"].Pending != 2 {
		t.Errorf("Hà Nội, August 2025: %s", fmtRow(rows["01"]))
	}
}

// TestReportLosesNoDossier: on random histories with transfers between
// wards, districts, the city and their offices, every report's rows sum to
// its total, and the total is the report of the same scope at its own
// level — but for the transfers between rows, which the total counts on
// both sides. The levels split the total: every field is theirs to the
// last dossier, transfers too when no row holds two levels.
func TestReportLosesNoDossier(t *testing.T) {
	u, _ := registry(t)
	dir := t.TempDir()
	n, ownRows := 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		events := genHistory(rt)
		n++
		db, err := projections.Open(filepath.Join(dir, fmt.Sprintf("p%d.db", n)))
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		if err := projections.NewProjector(db, u).Apply(ctx, toMsgs(rt, events)); err != nil {
			rt.Fatal(err)
		}
		report := func(q projections.ReportQuery) *projections.Report {
			rep, err := db.Report(ctx, u, q)
			if err != nil {
				rt.Fatalf("%+v: %v", q, err)
			}
			return rep
		}
		scopes := []struct {
			unit   string
			levels []hoso.Level
		}{
			{"004", []hoso.Level{hoso.LevelWard, hoso.LevelOffice}},
			{"01", []hoso.Level{hoso.LevelDistrict, hoso.LevelWard, hoso.LevelOffice}},
			{"", []hoso.Level{hoso.LevelProvince, hoso.LevelDistrict, hoso.LevelWard}},
			{"00127", []hoso.Level{hoso.LevelOffice}},
		}
		s := rapid.SampledFrom(scopes).Draw(rt, "scope")
		level := rapid.SampledFrom(s.levels).Draw(rt, "level")
		first := vn(2020, 1, 1, 0, 0)
		a := first.AddDate(0, 0, rapid.IntRange(0, 150).Draw(rt, "from"))
		b := a.AddDate(0, 0, rapid.IntRange(0, 150).Draw(rt, "days"))
		q := projections.ReportQuery{Unit: s.unit, Level: level, From: a.Format(time.DateOnly), To: b.Format(time.DateOnly)}
		rep := report(q)
		// The country's own level is the province.
		whole := report(projections.ReportQuery{Unit: s.unit, From: q.From, To: q.To})
		var sum hoso.ReportRow
		sum.Name = rep.Total.Name
		seenListed := false
		for i, r := range rep.Rows {
			sum.Add(&r)
			if r.Own {
				ownRows++
				if seenListed {
					rt.Fatalf("%+v: own row %s after the level's rows", q, r.Unit)
				}
				if r.Unit == s.unit && i != 0 {
					rt.Fatalf("%+v: the scope's own row is not the first", q)
				}
			} else {
				seenListed = true
			}
		}
		sum.Rates()
		if !sameRow(sum, rep.Total) {
			rt.Fatalf("%+v: rows sum to\n%s\ntotal\n%s", q, fmtRow(sum), fmtRow(rep.Total))
		}
		// Transfers between rows: in the total's in and out alike.
		between := rep.Total.TransferredIn - whole.Total.TransferredIn
		if between < 0 || rep.Total.TransferredOut-whole.Total.TransferredOut != between {
			rt.Fatalf("%+v: transfers %s against the scope's own level %s", q, fmtRow(rep.Total), fmtRow(whole.Total))
		}
		scope := rep.Total
		scope.TransferredIn, scope.TransferredOut = whole.Total.TransferredIn, whole.Total.TransferredOut
		scope.Rates()
		if !sameRow(scope, whole.Total) {
			rt.Fatalf("%+v: total\n%s\nthe scope at its own level\n%s", q, fmtRow(rep.Total), fmtRow(whole.Total))
		}
		// The levels: the same in every report of the scope but for the
		// transfers, which no row holding two levels counts between them.
		var lsum hoso.ReportRow
		lsum.Name = rep.Total.Name
		for i := range rep.Levels {
			if !rep.Levels[i].Balanced() {
				rt.Fatalf("%+v: level %s does not balance", q, rep.Levels[i].Level)
			}
			lsum.Add(&rep.Levels[i])
		}
		lsum.Rates()
		oneLevelRows := level == hoso.LevelWard || level == hoso.LevelOffice
		extra := lsum.TransferredIn - rep.Total.TransferredIn
		if extra < 0 || lsum.TransferredOut-rep.Total.TransferredOut != extra || oneLevelRows && extra != 0 {
			rt.Fatalf("%+v: levels transfers %s, total %s", q, fmtRow(lsum), fmtRow(rep.Total))
		}
		lsum.TransferredIn, lsum.TransferredOut = rep.Total.TransferredIn, rep.Total.TransferredOut
		lsum.Rates()
		if !sameRow(lsum, rep.Total) {
			rt.Fatalf("%+v: levels sum to\n%s\ntotal\n%s", q, fmtRow(lsum), fmtRow(rep.Total))
		}
	})
	if ownRows == 0 {
		t.Fatal("no report had an own row: the histories do not test them")
	}
}

// TestReportDistrictByLevel is the district's published split: its own
// desk (cấp quận) apart from its wards (cấp phường), in a table that loses
// no dossier.
func TestReportDistrictByLevel(t *testing.T) {
	u, _ := registry(t)
	db, events := levelFixture(t)
	q := projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2020-05-01", To: "2020-05-31"}
	rep := checkReport(t, db, events, q)
	own := rep.Rows[0]
	if !own.Own || own.Unit != "004" || own.Name != "Quận Long Biên (cấp quận)" || own.Received != 2 || own.Resolved != 1 || own.Pending != 1 {
		t.Errorf("own row %s", fmtRow(own))
	}
	wards := u.Descendants("004", hoso.LevelWard, vn(2020, 5, 31, 12, 0))
	if len(rep.Rows) != 1+len(wards) || rep.Rows[1].Own {
		t.Errorf("%d rows, want the own row and %d wards", len(rep.Rows), len(wards))
	}
	if len(rep.Levels) != 2 || rep.Levels[0].Level != hoso.LevelDistrict || rep.Levels[0].Name != "Cấp huyện" ||
		rep.Levels[0].Received != 2 || *rep.Levels[0].OnTimeRate != 1 ||
		rep.Levels[1].Level != hoso.LevelWard || rep.Levels[1].Received != 2 || *rep.Levels[1].OnTimeRate != 0 || rep.Levels[1].TransferredOut != 1 {
		t.Errorf("levels %+v", rep.Levels)
	}
	q.Level = hoso.LevelDistrict
	district := checkReport(t, db, events, q)
	row := district.Rows[0]
	row.Unit, row.Name, row.Level = "", rep.Total.Name, ""
	if !sameRow(district.Total, rep.Total) || !sameRow(row, rep.Total) {
		t.Errorf("ward-level total\n%s\ndistrict-level\n%s", fmtRow(rep.Total), fmtRow(district.Total))
	}
	if len(district.Levels) != 2 || !sameRow(district.Levels[0], rep.Levels[0]) || !sameRow(district.Levels[1], rep.Levels[1]) {
		t.Errorf("district-level levels %+v", district.Levels)
	}
	// By procedure: the same split.
	q.By = projections.ByProcedure
	if byProc := checkReport(t, db, events, q); len(byProc.Levels) != 2 || !sameRow(byProc.Levels[0], rep.Levels[0]) {
		t.Errorf("by procedure, levels %+v", byProc.Levels)
	}
}

// TestReportReform: after July 2025 a province's communes are the level
// below it, and every dossier still open across the reform is in a row:
// the mapping's commune where it names one, else the nearest unit that
// still exists, counted as unassigned there.
func TestReportReform(t *testing.T) {
	u, _ := registry(t)
	at := vn(2025, 6, 2, 9, 0)
	due := vn(2025, 9, 30, 17, 0)
	aug := projections.ReportQuery{Unit: "01", Level: hoso.LevelWard, From: "2025-08-01", To: "2025-08-31"}
	type want struct {
		row        string // the row's unit
		own        bool
		level      hoso.Level // of the levels entry
		unassigned int64
	}
	tests := []struct {
		name string
		unit string // where the dossier was received in June 2025
		q    projections.ReportQuery
		want want
	}{
		{"a district's dossier goes to the province's own row", "004", aug, want{"01", true, hoso.LevelProvince, 1}},
		{"an office of a district likewise", "LB-MOTCUA", aug, want{"01", true, hoso.LevelProvince, 1}},
		{"a ward merged whole goes to its commune", "00001", aug, want{"00097", false, hoso.LevelWard, 0}},
		{"a ward split, its whole population to one commune, goes to that commune", "00139", aug, want{"00118", false, hoso.LevelWard, 0}},
		{"a ward split between communes stays with its last parent's successor, unassigned", "00130", aug, want{"01", true, hoso.LevelProvince, 1}},
		{"a reused code counts for the unit that holds it", "00127", aug, want{"00127", false, hoso.LevelWard, 0}},
		{"a province gone at the reform: the province that took in its wards", "024",
			projections.ReportQuery{Unit: "08", Level: hoso.LevelWard, From: "2025-08-01", To: "2025-08-31"}, want{"08", true, hoso.LevelProvince, 1}},
		{"a report by district after the reform: the communes stand in its place", "00001",
			projections.ReportQuery{Unit: "01", Level: hoso.LevelDistrict, From: "2025-08-01", To: "2025-08-31"}, want{"00097", false, hoso.LevelWard, 0}},
		{"before the reform, a ward merged in January 2025: the district's own row", "00142",
			projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2025-02-01", To: "2025-02-28"}, want{"004", true, hoso.LevelDistrict, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openDB(t)
			recv := at
			if tc.unit == "00142" {
				recv = vn(2024, 11, 4, 9, 0)
			}
			events := newDossier(t, "R1", tc.unit, "1.001776", hoso.ChannelDirect, recv, due).events
			if err := projections.NewProjector(db, u).Apply(context.Background(), toMsgs(t, events)); err != nil {
				t.Fatal(err)
			}
			rep := checkReport(t, db, events, tc.q)
			var got []hoso.ReportRow
			for _, r := range rep.Rows {
				if r.CarriedOver != 0 {
					got = append(got, r)
				}
			}
			if len(got) != 1 || got[0].Unit != tc.want.row || got[0].Own != tc.want.own || got[0].Unassigned != tc.want.unassigned || got[0].Pending != 1 {
				t.Fatalf("rows holding the dossier %+v, want %+v", got, tc.want)
			}
			if rep.Total.Pending != 1 || rep.Total.Unassigned != tc.want.unassigned {
				t.Errorf("total %s", fmtRow(rep.Total))
			}
			for _, l := range rep.Levels {
				if (l.Pending == 1) != (l.Level == tc.want.level) {
					t.Errorf("levels %+v, want the dossier at %s", rep.Levels, tc.want.level)
				}
			}
			// The communes are the level below the province: no district entry.
			if tc.q.From >= hoso.ReformDate && (len(rep.Levels) != 2 || rep.Levels[1].Level != hoso.LevelWard) {
				t.Errorf("levels after the reform %+v", rep.Levels)
			}
		})
	}
}

// levelFixture projects, for May 2020 in quận Long Biên, dossiers at the
// district's own desk and office and at two wards (one sent to Hoàn Kiếm).
func levelFixture(t *testing.T) (*projections.DB, []*hoso.Event) {
	t.Helper()
	u, _ := registry(t)
	db, _ := openDB(t)
	at := vn(2020, 5, 4, 9, 0)
	due := vn(2020, 5, 29, 17, 0)
	events := concat(
		// At the district's own desk, one resolved on time, one at its
		// one-stop office, open.
		newDossier(t, "Q1", "004", "1.001776", hoso.ChannelOnline, at, due).resolve(due),
		newDossier(t, "Q2", "LB-MOTCUA", "1.001776", hoso.ChannelDirect, at, due),
		// At a ward, one resolved late, one sent to Hoàn Kiếm.
		newDossier(t, "P1", "00127", "1.003003", hoso.ChannelDirect, at, due).resolve(due.AddDate(0, 0, 1)),
		newDossier(t, "P2", "00130", "1.003003", hoso.ChannelPostal, at, due).transfer(at.Add(time.Hour), "00037"),
	)
	if err := projections.NewProjector(db, u).Apply(context.Background(), toMsgs(t, events)); err != nil {
		t.Fatal(err)
	}
	return db, events
}

// TestReportAcrossTheReform is TestReportMatchesNaive and
// TestReportLosesNoDossier over the 2025 reform: dossiers received in
// May and June 2025 at wards merged whole, split or reused, at districts,
// the city, an office and a district of a province that did not survive,
// moved among them before the reform and closed or left open after it;
// reports of periods before, across and after it.
func TestReportAcrossTheReform(t *testing.T) {
	u, _ := registry(t)
	dir := t.TempDir()
	june := vn(2025, 6, 1, 12, 0)
	var owners []string
	for _, c := range []string{"00001", "00006", "00007", "00139", "00130", "00118", "00127", "00142", "00037", "00040",
		"004", "002", "01", "LB-MOTCUA", "HN-TTPVHCC", "024", "00688", "00691"} {
		if _, ok := u.At(c, june); ok {
			owners = append(owners, c)
		}
	}
	if len(owners) < 10 {
		t.Fatalf("only %v exist in June 2025", owners)
	}
	n, unassigned, mapped := 0, 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		base := vn(2025, 5, 1, 8, 0)
		reform := vn(2025, 7, 1, 0, 0)
		var perDossier [][]*hoso.Event
		for i := range rapid.IntRange(1, 20).Draw(rt, "dossiers") {
			at := base.Add(time.Duration(rapid.IntRange(0, 55*24*60).Draw(rt, "received")) * time.Minute)
			due := at.Add(time.Duration(rapid.IntRange(0, 60*24*60).Draw(rt, "due")) * time.Minute)
			b := newDossier(rt, fmt.Sprintf("R%03d", i), rapid.SampledFrom(owners).Draw(rt, "unit"), "1.001776", hoso.ChannelDirect, at, due)
			for range rapid.IntRange(0, 3).Draw(rt, "steps") {
				at := b.d.LastAt.Add(time.Duration(rapid.IntRange(0, 40*24*60).Draw(rt, "step")) * time.Minute)
				if b.d.State != hoso.StateProcessing {
					break
				}
				switch rapid.SampledFrom([]string{"transfer", "resolve", "withdraw", "pause"}).Draw(rt, "event") {
				case "transfer":
					// Only to units of the time: before the reform.
					if to := rapid.SampledFrom(owners).Draw(rt, "to_unit"); at.Before(reform) && to != b.d.Owner {
						b.transfer(at, to)
					}
				case "resolve":
					b.resolve(at)
				case "withdraw":
					b.withdraw(at)
				case "pause":
					b.pause(at)
				}
			}
			perDossier = append(perDossier, b.events)
		}
		var events []*hoso.Event
		for len(perDossier) > 0 {
			i := rapid.IntRange(0, len(perDossier)-1).Draw(rt, "next")
			events = append(events, perDossier[i][0])
			if perDossier[i] = perDossier[i][1:]; len(perDossier[i]) == 0 {
				perDossier = append(perDossier[:i], perDossier[i+1:]...)
			}
		}
		n++
		db, err := projections.Open(filepath.Join(dir, fmt.Sprintf("r%d.db", n)))
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		if err := projections.NewProjector(db, u).Apply(ctx, toMsgs(rt, events)); err != nil {
			rt.Fatal(err)
		}
		scopes := []struct {
			unit  string
			level hoso.Level
		}{
			{"01", hoso.LevelWard}, {"01", hoso.LevelDistrict}, {"01", hoso.LevelOffice}, {"01", ""},
			{"", hoso.LevelProvince}, {"", hoso.LevelWard}, {"08", hoso.LevelWard}, {"00118", ""},
		}
		s := rapid.SampledFrom(scopes).Draw(rt, "scope")
		from := base.AddDate(0, 0, rapid.IntRange(0, 120).Draw(rt, "from"))
		to := from.AddDate(0, 0, rapid.IntRange(0, 90).Draw(rt, "days"))
		q := projections.ReportQuery{Unit: s.unit, Level: s.level, From: from.Format(time.DateOnly), To: to.Format(time.DateOnly)}
		if _, ok := u.At(s.unit, to.Add(12*time.Hour)); s.unit != "" && !ok {
			rt.Skip("scope does not exist then")
		}
		if rapid.Bool().Draw(rt, "by_procedure") {
			q.By = projections.ByProcedure
		}
		rep := checkReport(rt, db, events, q)
		if rep.Total.Unassigned > 0 {
			unassigned++
		}
		for _, r := range rep.Rows {
			if r.Unit == "00097" && r.Pending+r.Resolved > 0 { // Phúc Xá's and Vĩnh Phúc's commune
				mapped++
			}
		}
		// Nothing of the scope lost: the table holds what the scope's
		// report at its own level does.
		whole, err := db.Report(ctx, u, projections.ReportQuery{Unit: s.unit, From: q.From, To: q.To, By: q.By})
		if err != nil {
			rt.Fatal(err)
		}
		a, b := rep.Total, whole.Total
		if a.CarriedOver != b.CarriedOver || a.Received != b.Received || a.Resolved != b.Resolved || a.Withdrawn != b.Withdrawn ||
			a.Pending != b.Pending || a.PendingOverdue != b.PendingOverdue || a.Unassigned < b.Unassigned {
			rt.Fatalf("%+v: total\n%s\nat the scope's own level\n%s", q, fmtRow(a), fmtRow(b))
		}
	})
	if unassigned == 0 || mapped == 0 {
		t.Fatalf("%d reports with unassigned dossiers, %d with a ward mapped to its commune: the histories do not test them", unassigned, mapped)
	}
}
