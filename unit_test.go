package hoso_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"pgregory.net/rapid"
)

func unitsRegistry(t testing.TB) *hoso.Units {
	t.Helper()
	u, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// unitsAt is local midnight of a date: the first instant of that day.
func unitsAt(date string) time.Time {
	t, err := time.ParseInLocation(time.DateOnly, date, hoso.VietnamZone)
	if err != nil {
		panic(err)
	}
	return t
}

func unitCodes(us []hoso.Unit) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Code
	}
	return out
}

func TestUnitsCounts(t *testing.T) {
	u := unitsRegistry(t)
	for _, tc := range []struct {
		date                       string
		provinces, districts, ward int
	}{
		{"2025-03-01", 63, 696, 10047}, // the last GSO snapshot (data/README.md)
		{"2025-06-30", 63, 696, 10047}, // the history holds until the reform
		{"2025-07-01", 34, 0, 3321},    // Decision 19/2025/QĐ-TTg
		{"2025-07-02", 34, 0, 3321},
		{"2026-05-01", 34, 0, 3321}, // Đồng Nai renames, but adds nothing
	} {
		t.Run(tc.date, func(t *testing.T) {
			at := unitsAt(tc.date)
			for level, want := range map[hoso.Level]int{
				hoso.LevelProvince: tc.provinces, hoso.LevelDistrict: tc.districts, hoso.LevelWard: tc.ward,
			} {
				got := u.Descendants("", level, at)
				if len(got) != want {
					t.Errorf("%s: %d, want %d", level, len(got), want)
				}
				if !slices.IsSortedFunc(got, func(a, b hoso.Unit) int { return strings.Compare(a.Code, b.Code) }) {
					t.Errorf("%s: not sorted by code", level)
				}
			}
			if got := u.Descendants("", hoso.LevelOffice, at); len(got) != 0 {
				t.Errorf("offices in the embedded registry: %v", unitCodes(got))
			}
		})
	}
	if got, want := u.Len(), 13065+3355+11; got != want {
		t.Errorf("Len = %d, want %d (history + 2025 + 2026 rows)", got, want)
	}
}

func TestUnitsAt(t *testing.T) {
	u := unitsRegistry(t)
	for _, tc := range []struct {
		code string
		at   time.Time
		want *hoso.Unit // nil: none
	}{
		{"00118", unitsAt("2020-01-01"), &hoso.Unit{Code: "00118", Name: "Phường Ngọc Thụy", Level: hoso.LevelWard, Kind: "Phường", Parent: "004", ValidTo: "2025-07-01"}},
		{"00118", unitsAt("2025-08-01"), &hoso.Unit{Code: "00118", Name: "Phường Bồ Đề", Level: hoso.LevelWard, Kind: "Phường", Parent: "01", ValidFrom: "2025-07-01"}},
		{"24", unitsAt("2025-06-30"), &hoso.Unit{Code: "24", Name: "Tỉnh Bắc Giang", Level: hoso.LevelProvince, Kind: "Tỉnh", ValidTo: "2025-07-01"}},
		{"24", unitsAt("2025-07-01"), &hoso.Unit{Code: "24", Name: "Tỉnh Bắc Ninh", Level: hoso.LevelProvince, Kind: "Tỉnh", ValidFrom: "2025-07-01"}},
		// The local date decides: 23:59:59 in Hà Nội is still the old day,
		// and 17:00 UTC on 30 June is already 1 July there.
		{"24", time.Date(2025, 6, 30, 23, 59, 59, 0, hoso.VietnamZone), &hoso.Unit{Code: "24", Name: "Tỉnh Bắc Giang", Level: hoso.LevelProvince, Kind: "Tỉnh", ValidTo: "2025-07-01"}},
		{"24", time.Date(2025, 6, 30, 17, 0, 0, 0, time.UTC), &hoso.Unit{Code: "24", Name: "Tỉnh Bắc Ninh", Level: hoso.LevelProvince, Kind: "Tỉnh", ValidFrom: "2025-07-01"}},
		{"00142", unitsAt("2020-01-01"), &hoso.Unit{Code: "00142", Name: "Phường Sài Đồng", Level: hoso.LevelWard, Kind: "Phường", Parent: "004", ValidTo: "2025-01-01"}},
		{"00142", unitsAt("2024-12-31"), &hoso.Unit{Code: "00142", Name: "Phường Sài Đồng", Level: hoso.LevelWard, Kind: "Phường", Parent: "004", ValidTo: "2025-01-01"}},
		{"00142", unitsAt("2025-01-01"), nil}, // merged (the history's valid_to)
		{"00142", unitsAt("2025-02-01"), nil},
		{"004", unitsAt("2020-01-01"), &hoso.Unit{Code: "004", Name: "Quận Long Biên", Level: hoso.LevelDistrict, Kind: "Quận", Parent: "01", ValidTo: "2025-07-01"}},
		{"004", unitsAt("2025-07-01"), nil}, // no districts after the reform
		{"01", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), &hoso.Unit{Code: "01", Name: "Thành phố Hà Nội", Level: hoso.LevelProvince, Kind: "Thành phố Trung ương", ValidTo: "2025-07-01"}},
		{"01", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), &hoso.Unit{Code: "01", Name: "Thành phố Hà Nội", Level: hoso.LevelProvince, Kind: "Thành phố Trung ương", ValidFrom: "2025-07-01"}},
		{"99999", unitsAt("2020-01-01"), nil},
		{"", unitsAt("2020-01-01"), nil},
	} {
		t.Run(tc.code+"@"+tc.at.Format(time.RFC3339), func(t *testing.T) {
			got, ok := u.At(tc.code, tc.at)
			switch {
			case tc.want == nil && ok:
				t.Errorf("got %+v, want none", got)
			case tc.want != nil && !ok:
				t.Errorf("none, want %+v", *tc.want)
			case tc.want != nil && got != *tc.want:
				t.Errorf("got  %+v\nwant %+v", got, *tc.want)
			}
		})
	}
}

func TestUnitsOnDate(t *testing.T) {
	u := unitsRegistry(t)
	utc, _ := time.Parse(time.DateOnly, "2025-07-01")
	far := time.FixedZone("UTC-11", -11*60*60)
	for _, d := range []time.Time{utc, unitsAt("2025-07-01"), time.Date(2025, 7, 1, 23, 0, 0, 0, far)} {
		got, ok := u.OnDate("24", d)
		if !ok || got.Name != "Tỉnh Bắc Ninh" {
			t.Errorf("OnDate(24, %v) = %+v, %v; want Tỉnh Bắc Ninh", d, got, ok)
		}
	}
	if got, ok := u.OnDate("24", time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)); !ok || got.Name != "Tỉnh Bắc Giang" {
		t.Errorf("OnDate(24, 2025-06-30) = %+v, %v; want Tỉnh Bắc Giang", got, ok)
	}
}

func TestUnitsHierarchy(t *testing.T) {
	u := unitsRegistry(t)
	in2020 := unitsAt("2020-01-01")
	if got := unitCodes(u.Ancestors("00118", in2020)); !slices.Equal(got, []string{"004", "01"}) {
		t.Errorf("Ancestors(00118, 2020) = %v, want [004 01]", got)
	}
	if got := u.Ancestors("00118", in2020); len(got) != 2 || got[0].Level != hoso.LevelDistrict || got[1].Level != hoso.LevelProvince {
		t.Errorf("Ancestors(00118, 2020) levels: %+v", got)
	}
	if got := unitCodes(u.Ancestors("00118", unitsAt("2025-08-01"))); !slices.Equal(got, []string{"01"}) {
		t.Errorf("Ancestors(00118, 2025-08) = %v, want [01]", got)
	}
	for _, code := range []string{"01", "99999", ""} {
		if got := u.Ancestors(code, in2020); got != nil {
			t.Errorf("Ancestors(%q) = %v, want nil", code, got)
		}
	}
	for _, tc := range []struct {
		code string
		at   time.Time
		want string
	}{
		{"00118", in2020, "01"}, {"004", in2020, "01"}, {"01", in2020, "01"},
		{"00118", unitsAt("2025-08-01"), "01"},
		{"24", unitsAt("2025-08-01"), "24"},
		{"00142", unitsAt("2025-02-01"), ""}, {"nope", in2020, ""},
	} {
		if got := u.Province(tc.code, tc.at); got != tc.want {
			t.Errorf("Province(%s, %s) = %q, want %q", tc.code, tc.at.Format(time.DateOnly), got, tc.want)
		}
	}
	// Children of Hà Nội before and after the reform.
	kids := u.Children("01", in2020)
	if len(kids) != 30 || kids[0].Level != hoso.LevelDistrict {
		t.Errorf("Children(01, 2020): %d units, first %+v; want Hà Nội's 30 districts", len(kids), kids[0])
	}
	kids = u.Children("01", unitsAt("2025-08-01"))
	if len(kids) != 126 || kids[0].Level != hoso.LevelWard {
		t.Errorf("Children(01, 2025-08): %d units; want 126 communes", len(kids))
	}
	if got := u.Children("00118", in2020); got != nil {
		t.Errorf("Children of a ward = %v", got)
	}
}

// unitsOracleRows reads the embedded files independently of unit.go, with
// the documented rules spelled out, as an oracle for the registry.
func unitsOracleRows(t testing.TB) ([]hoso.Unit, map[string][]hoso.Unit) {
	t.Helper()
	read := func(name string) [][]string {
		data, err := os.ReadFile("data/" + name)
		if err != nil {
			t.Fatal(err)
		}
		cr := csv.NewReader(bytes.NewReader(data))
		cr.Comment = '#'
		recs, err := cr.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs[1:]
	}
	later := map[string]bool{}
	var rows []hoso.Unit
	for _, r := range read("units-vn-history.csv") {
		to := r[6]
		if to == "" {
			to = "2025-07-01"
		}
		rows = append(rows, hoso.Unit{Code: r[0], Name: r[1], Level: hoso.Level(r[2]), Kind: r[3], Parent: r[4], ValidFrom: r[5], ValidTo: to})
	}
	for _, r := range read("units-vn-2026.csv") {
		later[r[0]] = true
		rows = append(rows, hoso.Unit{Code: r[0], Name: r[1], Level: hoso.Level(r[2]), Kind: r[3], Parent: r[4], ValidFrom: r[5], ValidTo: r[6]})
	}
	for _, r := range read("units-vn-2025.csv") {
		to := ""
		if later[r[0]] {
			to = "2026-04-30"
		}
		rows = append(rows, hoso.Unit{Code: r[0], Name: r[1], Level: hoso.Level(r[2]), Kind: r[3], Parent: r[4], ValidFrom: "2025-07-01", ValidTo: to})
	}
	byCode := map[string][]hoso.Unit{}
	for _, r := range rows {
		byCode[r.Code] = append(byCode[r.Code], r)
	}
	return rows, byCode
}

// unitsOracleAt is the rows of code open on date (YYYY-MM-DD dates compare
// as strings).
func unitsOracleAt(byCode map[string][]hoso.Unit, code, date string) []hoso.Unit {
	var out []hoso.Unit
	for _, r := range byCode[code] {
		if r.ValidFrom <= date && (r.ValidTo == "" || date < r.ValidTo) {
			out = append(out, r)
		}
	}
	return out
}

func TestUnitsDescendants(t *testing.T) {
	u := unitsRegistry(t)
	oracle, byCode := unitsOracleRows(t)
	// A unit's subtree by the oracle: every row open on date whose chain of
	// parents (on date) reaches root.
	subtree := func(root string, level hoso.Level, date string) []string {
		var out []string
		for _, r := range oracle {
			if r.Level != level || r.ValidFrom > date || (r.ValidTo != "" && date >= r.ValidTo) {
				continue
			}
			for c, n := r.Code, 0; n < 5; n++ {
				if c == root || root == "" {
					out = append(out, r.Code)
					break
				}
				p := unitsOracleAt(byCode, c, date)
				if len(p) != 1 || p[0].Parent == "" {
					break
				}
				c = p[0].Parent
			}
		}
		slices.Sort(out)
		return out
	}
	longBien := u.Descendants("004", hoso.LevelWard, unitsAt("2020-06-01"))
	if len(longBien) != 14 {
		t.Errorf("Descendants(004, ward, 2020-06-01): %d wards, want Long Biên's 14", len(longBien))
	}
	for _, w := range longBien {
		if w.Parent != "004" || w.Level != hoso.LevelWard {
			t.Errorf("ward of Long Biên: %+v", w)
		}
	}
	if !slices.ContainsFunc(longBien, func(w hoso.Unit) bool { return w.Name == "Phường Sài Đồng" }) {
		t.Errorf("Phường Sài Đồng is not among Long Biên's wards in 2020")
	}
	for _, tc := range []struct {
		code  string
		level hoso.Level
		date  string
	}{
		{"004", hoso.LevelWard, "2020-06-01"},
		{"004", hoso.LevelWard, "2025-02-01"},
		{"01", hoso.LevelDistrict, "2020-06-01"},
		{"01", hoso.LevelWard, "2021-03-15"},
		{"", hoso.LevelDistrict, "2020-06-01"},
		{"", hoso.LevelDistrict, "2023-05-05"},
		{"", hoso.LevelProvince, "2019-01-01"},
		{"79", hoso.LevelWard, "2025-03-01"},
		{"79", hoso.LevelWard, "2025-07-01"},
		{"75", hoso.LevelWard, "2026-04-30"},
		{"", hoso.LevelWard, "2024-09-01"},
	} {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.code, tc.level, tc.date), func(t *testing.T) {
			got := unitCodes(u.Descendants(tc.code, tc.level, unitsAt(tc.date)))
			want := subtree(tc.code, tc.level, tc.date)
			if !slices.Equal(got, want) {
				t.Errorf("%d units, oracle %d", len(got), len(want))
			}
		})
	}
	for _, tc := range []struct {
		code  string
		level hoso.Level
		want  []string
	}{
		{"00118", hoso.LevelWard, []string{"00118"}}, // its own level: itself
		{"004", hoso.LevelDistrict, []string{"004"}},
		{"00118", hoso.LevelDistrict, nil}, // above the unit
		{"004", hoso.LevelProvince, nil},
		{"004", hoso.Level("county"), nil},
		{"99999", hoso.LevelWard, nil},
	} {
		if got := unitCodes(u.Descendants(tc.code, tc.level, unitsAt("2020-06-01"))); !slices.Equal(got, tc.want) {
			t.Errorf("Descendants(%s, %s) = %v, want %v", tc.code, tc.level, got, tc.want)
		}
	}
}

// TestUnitsOracle checks At, Children and Ancestors against the oracle on
// random codes and instants, near the edges of periods.
func TestUnitsOracle(t *testing.T) {
	u := unitsRegistry(t)
	oracle, byCode := unitsOracleRows(t)
	rapid.Check(t, func(t *rapid.T) {
		row := oracle[rapid.IntRange(0, len(oracle)-1).Draw(t, "row")]
		var at time.Time
		edges := []string{row.ValidFrom, row.ValidTo}
		if e := edges[rapid.IntRange(0, 1).Draw(t, "edge")]; e != "" && rapid.Bool().Draw(t, "near") {
			at = unitsAt(e).Add(time.Duration(rapid.IntRange(-36, 36).Draw(t, "hours")) * time.Hour)
		} else {
			at = unitsAt("2019-06-01").Add(time.Duration(rapid.IntRange(0, 8*365*24).Draw(t, "hour")) * time.Hour)
		}
		date := at.In(hoso.VietnamZone).Format(time.DateOnly)
		want := unitsOracleAt(byCode, row.Code, date)
		if len(want) > 1 {
			t.Fatalf("oracle: %s has %d rows on %s", row.Code, len(want), date)
		}
		got, ok := u.At(row.Code, at)
		if ok != (len(want) == 1) || ok && got != want[0] {
			t.Fatalf("At(%s, %s) = %+v, %v; oracle %+v", row.Code, at, got, ok, want)
		}
		if !ok {
			return
		}
		if !slices.Contains(u.Children(got.Parent, at), got) {
			t.Fatalf("%s is not among the children of its parent %q", got.Code, got.Parent)
		}
		anc := u.Ancestors(got.Code, at)
		if want := map[hoso.Level]int{hoso.LevelProvince: 0, hoso.LevelDistrict: 1}[got.Level]; got.Level != hoso.LevelWard && len(anc) != want {
			t.Fatalf("Ancestors(%s) = %v", got.Code, unitCodes(anc))
		}
		if got.Level != hoso.LevelProvince && (len(anc) == 0 || anc[len(anc)-1].Level != hoso.LevelProvince || anc[len(anc)-1].Code != u.Province(got.Code, at)) {
			t.Fatalf("Ancestors(%s) = %v, Province %q", got.Code, unitCodes(anc), u.Province(got.Code, at))
		}
	})
}

func TestUnitsDongNai2026(t *testing.T) {
	u := unitsRegistry(t)
	before, after := unitsAt("2026-04-29"), unitsAt("2026-04-30")
	if p, _ := u.At("75", before); p.Name != "Tỉnh Đồng Nai" || p.Kind != "Tỉnh" || p.ValidTo != "2026-04-30" {
		t.Errorf("75 on 2026-04-29: %+v", p)
	}
	if p, _ := u.At("75", after); p.Name != "Thành phố Đồng Nai" || p.Kind != "Thành phố Trung ương" || p.ValidFrom != "2026-04-30" || p.ValidTo != "" {
		t.Errorf("75 on 2026-04-30: %+v", p)
	}
	if h := u.History("75"); len(h) != 3 || h[0].Name != "Tỉnh Đồng Nai" || h[0].ValidTo != "2025-07-01" {
		t.Errorf("History(75) = %+v", h)
	}
	codes := []string{"25270", "25357", "25363", "26116", "26170", "26248", "26326", "26368", "26425", "26485"}
	for _, code := range codes {
		old, ok1 := u.At(code, before)
		now, ok2 := u.At(code, after)
		if !ok1 || !ok2 || old.Kind != "Xã" || now.Kind != "Phường" || now.Parent != "75" ||
			strings.TrimPrefix(old.Name, "Xã ") != strings.TrimPrefix(now.Name, "Phường ") {
			t.Errorf("%s: %+v → %+v", code, old, now)
		}
	}
	phuong := func(at time.Time) (n int) {
		for _, w := range u.Descendants("75", hoso.LevelWard, at) {
			if w.Kind == "Phường" {
				n++
			}
		}
		return n
	}
	if b, a := phuong(before), phuong(after); a != b+10 {
		t.Errorf("Phường in Đồng Nai: %d before, %d after; want 10 more", b, a)
	}
}

func TestUnitsSuccessors(t *testing.T) {
	u := unitsRegistry(t)
	got := u.Successors("00007")
	if !slices.Contains(got, hoso.Successor{Code: "00008", Note: "Nhập một phần"}) {
		t.Errorf("Successors(00007) = %v", got)
	}
	if got := u.Successors("00004"); !slices.Equal(got, []hoso.Successor{{Code: "00004", Note: "Nhập toàn bộ"}}) {
		t.Errorf("Successors(00004) = %v", got)
	}
	if got := u.Successors("01651"); got != nil { // a documented gap of the table
		t.Errorf("Successors(01651) = %v, want none", got)
	}
	got[0].Code = "x" // the caller's copy
	if u.Successors("00007")[0].Code == "x" {
		t.Error("Successors shares its slice")
	}
	// Every old ward open before the reform maps to communes of the reform.
	reform := unitsAt("2025-07-01")
	n := 0
	for _, w := range u.Descendants("", hoso.LevelWard, unitsAt("2025-06-30")) {
		succ := u.Successors(w.Code)
		n += len(succ)
		for _, s := range succ {
			if c, ok := u.At(s.Code, reform); !ok || c.Level != hoso.LevelWard {
				t.Errorf("%s → %s: no commune on 2025-07-01", w.Code, s.Code)
			}
		}
	}
	if n != 10565 {
		t.Errorf("%d mapping rows for the wards of 2025-06-30, want 10565", n)
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"province", "district", "ward", "office"} {
		if l, err := hoso.ParseLevel(s); err != nil || string(l) != s {
			t.Errorf("ParseLevel(%q) = %q, %v", s, l, err)
		}
	}
	for _, s := range []string{"", "Ward", "commune", " ward"} {
		_, err := hoso.ParseLevel(s)
		var e *hoso.Error
		if !errors.As(err, &e) || e.Code != hoso.EINVALID || e.Field != "level" {
			t.Errorf("ParseLevel(%q) = %v, want EINVALID on level", s, err)
		}
	}
}

// unitsOperatorFile is an operator file: a public-service centre of Hà Nội,
// a renamed ward, and a ward closed early.
const unitsOperatorFile = "\uFEFF# the operator's own units\r\n" +
	"code,name,level,kind,parent,valid_from,valid_to\r\n" +
	"HN-TTPVHCC,Trung tâm Phục vụ hành chính công Hà Nội,office,Trung tâm,01,2023-01-01,\r\n" +
	"HN-TTPVHCC-LB,Điểm tiếp nhận Long Biên,office,Điểm tiếp nhận,004,2023-01-01,2025-07-01\r\n" +
	// 00127 renamed in 2022: its embedded row ends then.
	"00127,Phường Mới,ward,Phường,004,2022-01-01,2025-07-01\r\n" +
	// 00118 closed on 2024-01-01: the row replaces the embedded one.
	"00118,Phường Ngọc Thụy,ward,Phường,004,,2024-01-01\r\n"

func TestUnitsOperator(t *testing.T) {
	base := unitsRegistry(t)
	u, err := hoso.LoadUnits(hoso.NamedReader{Name: "ops.csv", R: strings.NewReader(unitsOperatorFile)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Len(), base.Len()+3; got != want {
		t.Errorf("Len = %d, want %d (2 offices, 00127's new name; 00118's row replaced)", got, want)
	}
	in2024 := unitsAt("2024-03-01")
	office, ok := u.At("HN-TTPVHCC", in2024)
	if !ok || office.Level != hoso.LevelOffice || office.Parent != "01" {
		t.Fatalf("the office: %+v, %v", office, ok)
	}
	if _, ok := u.At("HN-TTPVHCC", unitsAt("2022-12-31")); ok {
		t.Error("the office exists before its valid_from")
	}
	if _, ok := u.At("HN-TTPVHCC", unitsAt("2030-01-01")); !ok {
		t.Error("the office ends; its valid_to is open")
	}
	if got := u.Province("HN-TTPVHCC-LB", in2024); got != "01" {
		t.Errorf("Province(HN-TTPVHCC-LB) = %q", got)
	}
	if got := unitCodes(u.Ancestors("HN-TTPVHCC-LB", in2024)); !slices.Equal(got, []string{"004", "01"}) {
		t.Errorf("Ancestors(HN-TTPVHCC-LB) = %v", got)
	}
	if got := unitCodes(u.Descendants("01", hoso.LevelOffice, in2024)); !slices.Equal(got, []string{"HN-TTPVHCC", "HN-TTPVHCC-LB"}) {
		t.Errorf("Descendants(01, office) = %v", got)
	}
	if got := unitCodes(u.Descendants("HN-TTPVHCC", hoso.LevelOffice, in2024)); !slices.Equal(got, []string{"HN-TTPVHCC"}) {
		t.Errorf("Descendants(office, office) = %v", got)
	}
	if got := u.Descendants("HN-TTPVHCC", hoso.LevelWard, in2024); got != nil {
		t.Errorf("Descendants(office, ward) = %v", got)
	}
	if n, m := len(u.Descendants("01", hoso.LevelWard, in2024)), len(base.Descendants("01", hoso.LevelWard, in2024)); n != m-1 {
		t.Errorf("Hà Nội's wards: %d, want %d: offices are not wards, and 00118 is closed", n, m-1)
	}
	if !slices.Contains(unitCodes(u.Children("01", in2024)), "HN-TTPVHCC") {
		t.Error("the office is not a child of 01")
	}
	// The rename closes the embedded row.
	old, _ := u.At("00127", unitsAt("2021-12-31"))
	now, _ := u.At("00127", unitsAt("2022-01-01"))
	if old.ValidTo != "2022-01-01" || now.Name != "Phường Mới" || now.ValidFrom != "2022-01-01" {
		t.Errorf("00127: %+v then %+v", old, now)
	}
	// The closed ward.
	if w, ok := u.At("00118", unitsAt("2023-12-31")); !ok || w.ValidTo != "2024-01-01" {
		t.Errorf("00118 on 2023-12-31: %+v, %v", w, ok)
	}
	if w, ok := u.At("00118", in2024); ok {
		t.Errorf("00118 is closed from 2024-01-01, got %+v", w)
	}
	if w, _ := u.At("00118", unitsAt("2025-08-01")); w.Name != "Phường Bồ Đề" {
		t.Errorf("00118 after the reform: %+v", w)
	}
	// The embedded registry is unchanged.
	if w, ok := base.At("00118", in2024); !ok || w.Name != "Phường Ngọc Thụy" {
		t.Errorf("the base registry changed: %+v, %v", w, ok)
	}

	// A later file changes the operator's own rows the same way.
	later := "code,name,level,kind,parent,valid_from,valid_to\n" +
		"HN-TTPVHCC,Trung tâm Phục vụ hành chính công thành phố Hà Nội,office,Trung tâm,01,2025-07-01,\n"
	u, err = hoso.LoadUnits(hoso.NamedReader{Name: "ops.csv", R: strings.NewReader(unitsOperatorFile)},
		hoso.NamedReader{Name: "later.csv", R: strings.NewReader(later)})
	if err != nil {
		t.Fatal(err)
	}
	if h := u.History("HN-TTPVHCC"); len(h) != 2 || h[0].ValidTo != "2025-07-01" || h[1].ValidFrom != "2025-07-01" {
		t.Errorf("History(HN-TTPVHCC) = %+v", h)
	}
}

func TestUnitsOperatorErrors(t *testing.T) {
	const header = "code,name,level,kind,parent,valid_from,valid_to\n"
	for _, tc := range []struct {
		name string
		file string
		want []string // each must appear in the error
	}{
		{"empty", "", []string{"ops.csv: empty"}},
		{"comments only", "# nothing\n", []string{"ops.csv: empty"}},
		{"unknown column", "code,name,level,kind,parent,valid_from,valid_to,note\n",
			[]string{`ops.csv line 1, column 8 "note": unknown column`}},
		{"repeated column", "code,name,level,kind,parent,valid_from,code\n",
			[]string{`ops.csv line 1, column 7 "code": repeated column`}},
		{"missing column", "code,name,level,kind,parent,valid_from\n",
			[]string{"ops.csv line 1: no column valid_to"}},
		{"bad level", header + "X-1,Quầy,county,,01,2020-01-01,\n",
			[]string{`ops.csv line 2, column 3 (level) "county": must be province, district, ward or office`}},
		{"columns in another order", "valid_to,valid_from,parent,kind,level,name,code\n,2020-01-01,01,,county,Quầy,X-1\n",
			[]string{`ops.csv line 2, column 5 (level) "county"`}},
		{"parent missing on valid_from", header + "X-1,Quầy,office,,004,2025-08-01,\n",
			[]string{`ops.csv line 2, column 5 (parent) "004": no unit with this code on 2025-08-01`}},
		{"parent unknown", header + "X-1,Quầy,office,,00000,2020-01-01,\n",
			[]string{`ops.csv line 2, column 5 (parent) "00000": no unit with this code on 2020-01-01`}},
		{"parent of the wrong level", header + "999,Quận Mới,district,Quận,004,2020-01-01,\n",
			[]string{`ops.csv line 2, column 5 (parent) "004": is a district (Quận Long Biên) on 2020-01-01; a district cannot be under it`}},
		{"office under an office", header + "X-1,A,office,,01,2020-01-01,\nX-2,B,office,,X-1,2020-01-01,\n",
			[]string{`ops.csv line 3, column 5 (parent) "X-1": is an office (A) on 2020-01-01; an office cannot be under it`}},
		{"province with a parent", header + "98,Tỉnh Mới,province,Tỉnh,01,2030-01-01,\n",
			[]string{`ops.csv line 2, column 5 (parent) "01": a province has no parent`}},
		{"ward without a parent", header + "99998,Phường Mới,ward,Phường,,2030-01-01,\n",
			[]string{`ops.csv line 2, column 5 (parent) "": required for a ward`}},
		{"valid_to before valid_from", header + "X-1,Quầy,office,,01,2021-01-01,2020-01-01\n",
			[]string{`ops.csv line 2, column 7 (valid_to) "2020-01-01": must be after valid_from 2021-01-01`}},
		{"valid_to equal to valid_from", header + "X-1,Quầy,office,,01,2021-01-01,2021-01-01\n",
			[]string{`ops.csv line 2, column 7 (valid_to) "2021-01-01": must be after`}},
		{"bad date", header + "X-1,Quầy,office,,01,2021-02-30,\n",
			[]string{`ops.csv line 2, column 6 (valid_from) "2021-02-30": want a date`}},
		{"short date", header + "X-1,Quầy,office,,01,21-01-01,\n",
			[]string{`ops.csv line 2, column 6 (valid_from) "21-01-01"`}},
		{"office code like a GSO code", header + "12345,Quầy,office,,01,2020-01-01,\n",
			[]string{`ops.csv line 2, column 1 (code) "12345": an office code must not look like a GSO code`}},
		{"ward code not GSO", header + "0012,Phường,ward,Phường,004,2020-01-01,\n",
			[]string{`ops.csv line 2, column 1 (code) "0012": a ward code is 5 digits`}},
		{"code with a space", header + "X 1,Quầy,office,,01,2020-01-01,\n",
			[]string{`ops.csv line 2, column 1 (code) "X 1"`}},
		{"no name", header + "X-1,,office,,01,2020-01-01,\n",
			[]string{`ops.csv line 2, column 2 (name) "": required`}},
		{"field count", header + "X-1,Quầy,office,,01,2020-01-01\n",
			[]string{"ops.csv line 2: a row has as many fields as the header"}},
		{"bad quote", header + "X-1,Qu\"ầy,office,,01,2020-01-01,\n",
			[]string{"ops.csv line 2, column"}},
		{"overlap in the file", header + "X-1,A,office,,01,2020-01-01,\nX-1,B,office,,01,2020-06-01,\n",
			[]string{`ops.csv line 3, column 6 (valid_from) "2020-06-01": overlaps ops.csv line 2 (A, 2020-01-01 to open)`}},
		{"overlap with a later embedded row", header + "00118,Phường Ngọc Thụy,ward,Phường,004,2024-01-01,\n",
			[]string{`ops.csv line 2, column 7 (valid_to) "": overlaps data/units-vn-2025.csv line 11 (Phường Bồ Đề, 2025-07-01 to open)`}},
		{"overlap with an earlier embedded row", header + "00142,Phường Sài Đồng,ward,Phường,004,2024-06-01,2025-06-01\n" +
			"00142,Phường Sài Đồng,ward,Phường,004,,2024-09-01\n",
			[]string{`ops.csv line 3, column 7 (valid_to) "2024-09-01": overlaps ops.csv line 2 (Phường Sài Đồng, 2024-06-01 to 2025-06-01)`}},
		{"closing a parent strands its children", header + "004,Quận Long Biên,district,Quận,01,,2020-01-01\n",
			[]string{`data/units-vn-history.csv line 862, column 5 (parent) "004": no unit with this code on 2020-01-01, once the rows of ops.csv close it`}},
		{"parent ends before the row", header + "X-1,Quầy,office,,004,2023-01-01,\n",
			[]string{`ops.csv line 2, column 5 (parent) "004": no unit with this code on 2025-07-01; end this row by then`}},
		{"every bad row", header + "X-1,A,county,,01,2020-01-01,\nX-2,B,office,,01,2020-13-01,\nX-3,C,office,,01,2020-01-01,2019-01-01\n",
			[]string{"line 2, column 3 (level)", "line 3, column 6 (valid_from)", "line 4, column 7 (valid_to)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hoso.LoadUnits(hoso.NamedReader{Name: "ops.csv", R: strings.NewReader(tc.file)})
			if err == nil {
				t.Fatal("no error")
			}
			if hoso.ErrorCode(err) != hoso.EINVALID {
				t.Errorf("code %q, want invalid: %v", hoso.ErrorCode(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
	// Many bad rows: the error stops at a bound, and says so.
	var many strings.Builder
	many.WriteString(header)
	for i := range 50 {
		fmt.Fprintf(&many, "X-%d,Q,county,,01,,\n", i)
	}
	_, err := hoso.LoadUnits(hoso.NamedReader{Name: "ops.csv", R: strings.NewReader(many.String())})
	if err == nil || !strings.Contains(err.Error(), "stopped after") || strings.Count(err.Error(), "county") > 21 {
		t.Errorf("50 bad rows: %v", err)
	}
	if _, err := hoso.LoadUnits(hoso.NamedReader{Name: "nil.csv"}); err == nil || !strings.Contains(err.Error(), "nil.csv") {
		t.Errorf("nil reader: %v", err)
	}
}

func TestUnitsConcurrent(t *testing.T) {
	u := unitsRegistry(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			at := unitsAt("2020-01-01").AddDate(0, g, 0)
			for range 200 {
				u.At("00118", at)
				u.Province("00118", at)
				u.Children("004", at)
				u.Successors("00118")
			}
		})
	}
	wg.Wait()
}

func BenchmarkUnitsAt(b *testing.B) {
	u := unitsRegistry(b)
	codes := []string{"00118", "00127", "004", "01", "24", "26485", "03016", "99999"}
	times := []time.Time{unitsAt("2020-03-04").Add(9 * time.Hour), unitsAt("2025-08-01").Add(14 * time.Hour), unitsAt("2026-05-01")}
	i := 0
	for b.Loop() {
		u.At(codes[i%len(codes)], times[i%len(times)])
		i++
	}
}

func BenchmarkUnitsProvince(b *testing.B) {
	u := unitsRegistry(b)
	at := unitsAt("2020-03-04").Add(9 * time.Hour)
	for b.Loop() {
		u.Province("00118", at)
	}
}

func BenchmarkUnitsDescendantsCountry(b *testing.B) {
	u := unitsRegistry(b)
	at := unitsAt("2020-03-04")
	for b.Loop() {
		u.Descendants("", hoso.LevelWard, at)
	}
}

// BenchmarkLoadUnits: the embedded files are read once per process (the
// first call, about 20 ms); later calls share that registry, and operator
// files are layered on a copy of it.
func BenchmarkLoadUnits(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		for b.Loop() {
			if _, err := hoso.LoadUnits(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("operator-file", func(b *testing.B) {
		for b.Loop() {
			if _, err := hoso.LoadUnits(hoso.NamedReader{Name: "ops.csv", R: strings.NewReader(unitsOperatorFile)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func FuzzUnitsCSV(f *testing.F) {
	f.Add(unitsOperatorFile)
	f.Add("code,name,level,kind,parent,valid_from,valid_to\nX-1,A,office,,01,2020-01-01,\nX-1,B,office,,01,2020-06-01,\n")
	f.Add("code,name,level,kind,parent,valid_from,valid_to\n004,Quận Long Biên,district,Quận,01,,2020-01-01\n")
	f.Add("code,name,level,kind,parent,valid_from,valid_to\n75,Đồng Nai,province,,,2027-01-01,\n26485,P,ward,Phường,75,2027-01-01,\n")
	f.Add("valid_to,code\n\"a\"b,\n")
	f.Fuzz(func(t *testing.T, file string) {
		u, err := hoso.LoadUnits(hoso.NamedReader{Name: "fuzz.csv", R: strings.NewReader(file)})
		if err != nil {
			if hoso.ErrorCode(err) != hoso.EINVALID || !strings.Contains(err.Error(), "fuzz.csv") {
				t.Fatalf("error without the file or code: %v", err)
			}
			return
		}
		// The codes the file names: their periods are sorted and disjoint,
		// and At finds each on its first day.
		for line := range strings.Lines(file) {
			code, _, _ := strings.Cut(line, ",")
			h := u.History(strings.TrimSpace(code))
			for i, p := range h {
				if i > 0 && (h[i-1].ValidTo == "" || h[i-1].ValidTo > p.ValidFrom) {
					t.Fatalf("%s: %+v overlaps %+v", p.Code, h[i-1], p)
				}
				day := p.ValidFrom
				if day == "" {
					day = "1900-01-01"
				}
				at, err := time.ParseInLocation(time.DateOnly, day, hoso.VietnamZone)
				if err != nil {
					t.Fatal(err)
				}
				if got, ok := u.At(p.Code, at); !ok || got != p {
					t.Fatalf("At(%s, %s) = %+v, %v; want %+v", p.Code, day, got, ok, p)
				}
				u.Ancestors(p.Code, at)
				u.Descendants(p.Code, hoso.LevelOffice, at)
			}
		}
	})
}
