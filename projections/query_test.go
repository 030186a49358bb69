package projections_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
	"github.com/xuri/excelize/v2"
)

// listFixture projects, for two wards, dossiers in every state with dues
// spread over March 2020, and answers "now" = 2020-03-16 10:00.
func listFixture(t *testing.T) (*projections.DB, []*hoso.Event, time.Time) {
	t.Helper()
	u, _ := registry(t)
	db, _ := openDB(t)
	var bs []*dossierBuilder
	recv := vn(2020, 3, 2, 9, 0)
	for i := range 40 {
		unit := []string{"00127", "00130"}[i%2]
		due := vn(2020, 3, 5+i/2, 17, 0)
		b := newDossier(t, fmt.Sprintf("L%02d", i), unit, "1.001776", hoso.ChannelDirect, recv, due)
		switch i % 5 {
		case 1:
			b.pause(recv.Add(time.Hour))
		case 2:
			b.resolve(recv.Add(2 * time.Hour))
		case 3:
			b.resolve(recv.Add(2 * time.Hour)).ret(recv.Add(3 * time.Hour))
		case 4:
			b.withdraw(recv.Add(time.Hour))
		}
		bs = append(bs, b)
	}
	events := concat(bs...)
	if err := projections.NewProjector(db, u).Apply(context.Background(), toMsgs(t, events)); err != nil {
		t.Fatal(err)
	}
	return db, stored(t, events), vn(2020, 3, 16, 10, 0)
}

func TestDossierNotFound(t *testing.T) {
	db, _ := openDB(t)
	_, err := db.Dossier(context.Background(), "nope")
	if hoso.ErrorCode(err) != hoso.ENOTFOUND {
		t.Fatalf("got %v, want not_found", err)
	}
}

func TestListDossiers(t *testing.T) {
	db, events, now := listFixture(t)
	ctx := context.Background()
	soon := now.Add(72 * time.Hour)
	folded := map[string]*hoso.Dossier{}
	for _, e := range events {
		if folded[e.Dossier] == nil {
			folded[e.Dossier] = &hoso.Dossier{}
		}
		mustApply(t, folded[e.Dossier], e)
	}
	match := func(q projections.ListQuery, d *hoso.Dossier) bool {
		if q.Unit != "" && d.Owner != q.Unit {
			return false
		}
		if !q.DueBefore.IsZero() && !d.Due.Before(q.DueBefore) {
			return false
		}
		proc := d.State == hoso.StateProcessing
		switch q.State {
		case "":
			return true
		case projections.ListOverdue:
			return proc && d.Due.Before(now)
		case projections.ListDueSoon:
			return proc && !d.Due.Before(now) && d.Due.Before(soon)
		case projections.ListInDeadline:
			return proc && !d.Due.Before(now)
		}
		return string(d.State) == q.State
	}
	for _, state := range []string{"", "processing", "awaiting_supplement", "resolved", "returned", "withdrawn", "overdue", "due_soon", "in_deadline"} {
		for _, unit := range []string{"", "00127"} {
			for _, limit := range []int{0, 3} {
				q := projections.ListQuery{Unit: unit, State: state, Limit: limit}
				if state == "processing" {
					q.DueBefore = vn(2020, 3, 20, 0, 0)
				}
				var want []string
				for _, d := range folded {
					if match(q, d) {
						want = append(want, d.Code)
					}
				}
				var got []string
				var lastDue time.Time
				for page := 0; ; page++ {
					items, next, err := db.ListDossiers(ctx, q, now, soon)
					if err != nil {
						t.Fatal(err)
					}
					if limit > 0 && len(items) > limit {
						t.Fatalf("%+v: page of %d", q, len(items))
					}
					for _, d := range items {
						if d.Due.Before(lastDue) {
							t.Fatalf("%+v: not in due order", q)
						}
						lastDue = d.Due
						got = append(got, d.Code)
					}
					if next == "" {
						break
					}
					q.Cursor = next
				}
				if len(got) != len(want) || len(got) == 0 && state != "due_soon" {
					t.Fatalf("%s/%s/%d: got %v, want %d dossiers %v", state, unit, limit, got, len(want), want)
				}
				seen := map[string]bool{}
				for _, c := range got {
					if seen[c] || !match(q, folded[c]) {
						t.Fatalf("%s/%s: %s listed twice or wrongly", state, unit, c)
					}
					seen[c] = true
				}
			}
		}
	}
	for _, tc := range []struct {
		q     projections.ListQuery
		field string
	}{
		{projections.ListQuery{State: "lost"}, "state"},
		{projections.ListQuery{Cursor: "!!"}, "cursor"},
		{projections.ListQuery{Limit: projections.MaxListLimit + 1}, "limit"},
		{projections.ListQuery{Unit: "00127", Units: []string{"00130"}}, "unit"},
	} {
		_, _, err := db.ListDossiers(ctx, tc.q, now, soon)
		var he *hoso.Error
		if !errors.As(err, &he) || he.Field != tc.field {
			t.Errorf("%+v: got %v, want an error naming %s", tc.q, err, tc.field)
		}
	}
	items, _, err := db.ListDossiers(ctx, projections.ListQuery{Units: []string{"00127", "00130"}, Limit: projections.MaxListLimit}, now, soon)
	if err != nil || len(items) != 40 {
		t.Fatalf("units list: %d, %v", len(items), err)
	}
}

func TestBacklog(t *testing.T) {
	db, events, now := listFixture(t)
	soon := now.Add(72 * time.Hour)
	want := map[string]*projections.BacklogRow{}
	folded := map[string]*hoso.Dossier{}
	for _, e := range events {
		if folded[e.Dossier] == nil {
			folded[e.Dossier] = &hoso.Dossier{}
		}
		mustApply(t, folded[e.Dossier], e)
	}
	for _, d := range folded {
		if !d.State.Open() {
			continue
		}
		if want[d.Owner] == nil {
			want[d.Owner] = &projections.BacklogRow{Unit: d.Owner}
		}
		w := want[d.Owner]
		switch {
		case d.State == hoso.StateAwaitingSupplement:
			w.Paused++
		case d.Due.Before(now):
			w.Overdue++
		case d.Due.Before(soon):
			w.DueSoon++
		default:
			w.InDeadline++
		}
	}
	rows, err := db.Backlog(context.Background(), now, soon)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("backlog rows %+v", rows)
	}
	for _, r := range rows {
		if r != *want[r.Unit] {
			t.Errorf("backlog %+v, want %+v", r, *want[r.Unit])
		}
	}
	unit, err := db.UnitBacklog(context.Background(), []string{"00130", "00133"}, now, soon)
	if err != nil {
		t.Fatal(err)
	}
	if len(unit) != 2 || unit[0] != *want["00130"] || unit[1] != (projections.BacklogRow{Unit: "00133"}) {
		t.Fatalf("unit backlog %+v", unit)
	}
	if unit[0].Open() != 8 {
		t.Fatalf("00130 has %d open dossiers, want 8", unit[0].Open())
	}
}

func exportFixture(t *testing.T) *projections.Report {
	t.Helper()
	db, _, _ := listFixture(t)
	u, _ := registry(t)
	rep, err := db.Report(context.Background(), u, projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2020-03-01", To: "2020-03-15"})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestReportCSV(t *testing.T) {
	rep := exportFixture(t)
	var buf bytes.Buffer
	if err := rep.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// The header, the rows, a subtotal per level (district, ward), the total.
	if len(rep.Levels) != 2 || len(recs) != 1+len(rep.Rows)+2+1 {
		t.Fatalf("%d records for %d rows and %d levels", len(recs), len(rep.Rows), len(rep.Levels))
	}
	h := recs[0]
	if h[0] != "(1) STT" || h[2] != "(3) Tổng số hồ sơ nhận giải quyết" || h[12] != "(13) Quá hạn" || h[len(h)-1] != "Mã" {
		t.Fatalf("header %q", h)
	}
	total := recs[len(recs)-1]
	if total[1] != "Tổng cộng" || total[2] != fmt.Sprint(rep.Total.Received+rep.Total.CarriedOver) {
		t.Fatalf("total %q (report %+v)", total, rep.Total)
	}
	var found bool
	for _, r := range recs[1 : len(recs)-1] {
		if r[len(r)-1] == "00127" {
			found = r[1] == "Phường Việt Hưng"
		}
	}
	if !found {
		t.Fatal("no row for Phường Việt Hưng (00127)")
	}
}

func TestReportXLSX(t *testing.T) {
	rep := exportFixture(t)
	var buf bytes.Buffer
	if err := rep.XLSX(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	text := func(r int) string { return strings.Join(rows[r], "|") }
	if !strings.Contains(text(0), "II.06a") || !strings.Contains(text(1), "TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH") ||
		!strings.Contains(text(2), "từ ngày 01/03/2020 đến ngày 15/03/2020") || !strings.Contains(text(3), "Quận Long Biên") {
		t.Fatalf("title rows:\n%s\n%s\n%s\n%s", text(0), text(1), text(2), text(3))
	}
	var numbers, total []string
	for i := range rows {
		if len(rows[i]) > 0 && rows[i][0] == "(1)" {
			numbers = rows[i]
		}
		if len(rows[i]) > 1 && rows[i][1] == "Tổng cộng" {
			total = rows[i]
		}
	}
	if len(numbers) < 13 || numbers[12] != "(13)" {
		t.Fatalf("numbered header %q", numbers)
	}
	if total == nil || total[6] != fmt.Sprint(rep.Total.Resolved) || total[10] != fmt.Sprint(rep.Total.Pending) {
		t.Fatalf("totals %q, report %+v", total, rep.Total)
	}
	for _, want := range []string{"Trực tuyến", "Trực tiếp, dịch vụ bưu chính", "Từ kỳ trước chuyển sang", "Trả trước hạn", "Trả đúng thời hạn", "Trả quá hạn", "Chưa đến hạn", "Chuyển đi", "Rút hồ sơ", "Phường Việt Hưng"} {
		var ok bool
		for i := range rows {
			ok = ok || strings.Contains(text(i), want)
		}
		if !ok {
			t.Errorf("no %q in the sheet", want)
		}
	}
}

func TestReportText(t *testing.T) {
	rep := exportFixture(t)
	var buf bytes.Buffer
	if err := rep.Text(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Quận Long Biên (004)", "Phường Việt Hưng", "Tổng cộng", "on time"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestSeenUnits(t *testing.T) {
	db, _, now := listFixture(t)
	u, _ := registry(t)
	for _, tc := range []struct {
		unit string
		want string
	}{{"004", "00127 00130"}, {"01", "00127 00130"}, {"00130", "00130"}, {"002", ""}, {"", "00127 00130"}} {
		got, err := db.SeenUnits(context.Background(), u, tc.unit, now)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("SeenUnits(%q) = %v, want %s", tc.unit, got, tc.want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}

// TestReportLevelsExports: the ward-level report of quận Long Biên as CSV
// and as the official form, with the district's own row first and the
// subtotals "Cấp huyện" and "Cấp xã" before the total.
func TestReportLevelsExports(t *testing.T) {
	db, _ := levelFixture(t)
	u, _ := registry(t)
	rep, err := db.Report(context.Background(), u, projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2020-05-01", To: "2020-05-31"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-004-ward.csv", buf.Bytes())
	buf.Reset()
	if err := rep.XLSX(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-004-ward.xlsx.txt", sheetText(t, buf.Bytes()))
	// A report by district of the same scope: one row, the same split.
	rep, err = db.Report(context.Background(), u, projections.ReportQuery{Unit: "004", From: "2020-05-01", To: "2020-05-31"})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := rep.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-004.csv", buf.Bytes())
}

// sheetText renders a workbook's first sheet as text: its merged ranges,
// then each row's cells (bold ones starred), tab-separated.
func sheetText(t *testing.T, data []byte) []byte {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	var out bytes.Buffer
	fmt.Fprintf(&out, "sheet %s\n", sheet)
	merged, err := f.GetMergeCells(sheet)
	if err != nil {
		t.Fatal(err)
	}
	var ranges []string
	for _, m := range merged {
		ranges = append(ranges, m.GetStartAxis()+":"+m.GetEndAxis())
	}
	sort.Strings(ranges)
	fmt.Fprintf(&out, "merged %s\n", strings.Join(ranges, " "))
	rows, err := f.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		cells := make([]string, len(r))
		for j, v := range r {
			name, _ := excelize.CoordinatesToCellName(j+1, i+1)
			id, err := f.GetCellStyle(sheet, name)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := f.GetStyle(id); err == nil && st.Font != nil && st.Font.Bold && v != "" {
				v = "*" + v
			}
			cells[j] = v
		}
		fmt.Fprintf(&out, "%d\t%s\n", i+1, strings.Join(cells, "\t"))
	}
	return out.Bytes()
}

// TestReportXLSXUnassigned: the form has no column for dossiers whose new
// unit is not known, so a note under the table says how many and where.
func TestReportXLSXUnassigned(t *testing.T) {
	u, _ := registry(t)
	db, _ := openDB(t)
	events := newDossier(t, "R1", "004", "1.001776", hoso.ChannelDirect, vn(2025, 6, 2, 9, 0), vn(2025, 9, 30, 17, 0)).events
	if err := projections.NewProjector(db, u).Apply(context.Background(), toMsgs(t, events)); err != nil {
		t.Fatal(err)
	}
	rep, err := db.Report(context.Background(), u, projections.ReportQuery{Unit: "01", Level: hoso.LevelWard, From: "2025-08-01", To: "2025-08-31"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.XLSX(&buf); err != nil {
		t.Fatal(err)
	}
	text := string(sheetText(t, buf.Bytes()))
	for _, want := range []string{"*Cấp tỉnh\t*1", "*Cấp xã\t*0",
		"Ghi chú: 1 hồ sơ của đơn vị không còn tồn tại ngày 31/08/2025", "(Thành phố Hà Nội (cấp thành phố): 1)"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}
