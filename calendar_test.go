package hoso_test

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"pgregory.net/rapid"
)

// workingDay is the working time of one processing day.
const workingDay = 8 * time.Hour

// ict is a wall-clock time in Vietnam.
func ict(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, hoso.VietnamZone)
}

func newTestCalendar(t testing.TB, files ...string) *hoso.Calendar {
	t.Helper()
	rs := make([]io.Reader, len(files))
	for i, f := range files {
		rs[i] = strings.NewReader(f)
	}
	cal, err := hoso.NewCalendar(rs...)
	if err != nil {
		t.Fatalf("NewCalendar: %v", err)
	}
	return cal
}

// overridesFile exercises the three uses the format is for: a national swap
// for a future Tết, a provincial holiday and a province's own hours.
const overridesFile = `province,date,kind,hours,name
# Tết 2027: Thursday 11/2 off, worked on Saturday 20/2 instead.
,2027-02-11,holiday,,Day off (swapped for 2027-02-20)
,2027-02-20,working,,Working Saturday (swapped for 2027-02-11)
# Hà Nội only.
01,2025-10-10,holiday,,Provincial day off (example)
# Hồ Chí Minh City opens earlier.
79,,hours,07:30-11:30 13:00-17:00,
`

func TestDue(t *testing.T) {
	cal := newTestCalendar(t)
	tests := []struct {
		name     string
		received time.Time
		days     float64
		want     time.Time
	}{
		{"monday morning, one day", ict(2025, 3, 3, 10, 0), 1, ict(2025, 3, 4, 10, 0)},
		{"seconds are kept", ict(2025, 3, 3, 10, 0).Add(30 * time.Second), 1, ict(2025, 3, 4, 10, 0).Add(30 * time.Second)},
		{"received as UTC", time.Date(2025, 3, 3, 3, 0, 0, 0, time.UTC), 1, ict(2025, 3, 4, 10, 0)},
		{"half a day", ict(2025, 3, 3, 10, 0), 0.5, ict(2025, 3, 3, 15, 0)},
		{"noon break starts at 13:00", ict(2025, 3, 3, 12, 30), 0.5, ict(2025, 3, 3, 17, 0)},
		{"noon break, one day ends at noon", ict(2025, 3, 3, 12, 30), 1, ict(2025, 3, 4, 12, 0)},
		{"before opening", ict(2025, 3, 3, 7, 0), 0.5, ict(2025, 3, 3, 12, 0)},
		{"evening starts next morning", ict(2025, 3, 3, 18, 0), 1, ict(2025, 3, 4, 17, 0)},
		{"saturday starts monday", ict(2025, 3, 8, 10, 0), 1, ict(2025, 3, 10, 17, 0)},
		{"ends exactly at 17:00", ict(2025, 3, 3, 8, 0), 1, ict(2025, 3, 3, 17, 0)},
		{"afternoon half day ends at 17:00", ict(2025, 3, 3, 13, 0), 0.5, ict(2025, 3, 3, 17, 0)},
		{"friday 17:00 exactly", ict(2025, 3, 7, 9, 0), 1, ict(2025, 3, 10, 9, 0)},
		{"fraction rounds to the minute", ict(2025, 3, 3, 10, 0), 0.01, ict(2025, 3, 3, 10, 5)},
		{"fifteen days over three weekends", ict(2025, 6, 4, 10, 0), 15, ict(2025, 6, 25, 10, 0)},
		// Tết 2024: 8–14/2 in the holidays file.
		{"across Tết 2024", ict(2024, 2, 7, 10, 0), 1, ict(2024, 2, 15, 10, 0)},
		// Tết 2025: 27/1–1/2.
		{"across Tết 2025", ict(2025, 1, 24, 15, 0), 1, ict(2025, 2, 3, 15, 0)},
		// 30/4 and 1/5 2025 fall on Wednesday and Thursday.
		{"across 30/4-1/5 2025", ict(2025, 4, 29, 14, 0), 2, ict(2025, 5, 5, 14, 0)},
		// National Day 2025: Monday 1/9 and Tuesday 2/9.
		{"across 2/9 2025", ict(2025, 8, 29, 9, 0), 1, ict(2025, 9, 3, 9, 0)},
		// 2024: Monday 29/4 off, worked on Saturday 4/5 instead.
		{"swapped saturday is worked", ict(2024, 5, 3, 10, 0), 1, ict(2024, 5, 4, 10, 0)},
		{"swapped day off is not", ict(2024, 4, 26, 10, 0), 1, ict(2024, 5, 2, 10, 0)},
		{"far future follows weekdays", ict(2049, 12, 31, 10, 0), 1, ict(2050, 1, 3, 10, 0)},
		{"far past follows weekdays", ict(1990, 1, 5, 10, 0), 1, ict(1990, 1, 8, 10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cal.Due("", tt.received, tt.days)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("Due(%v, %v) = %v, want %v in UTC", tt.received, tt.days, got, tt.want.UTC())
			}
		})
	}
}

func TestDueErrors(t *testing.T) {
	cal := newTestCalendar(t)
	for _, days := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), 365.5, 0.001} {
		_, err := cal.Due("", ict(2025, 3, 3, 10, 0), days)
		var e *hoso.Error
		if !errors.As(err, &e) || e.Code != hoso.EINVALID || e.Field != "days" {
			t.Errorf("Due(days=%v) = %v, want EINVALID on days", days, err)
		}
	}
	// Two decimals that are not exact in binary are accepted.
	for _, days := range []float64{0.29, 1.1, 365} {
		if _, err := cal.Due("", ict(2025, 3, 3, 10, 0), days); err != nil {
			t.Errorf("Due(days=%v): %v", days, err)
		}
	}
}

func TestIsWorkingDay(t *testing.T) {
	cal := newTestCalendar(t)
	tests := []struct {
		at   time.Time
		want bool
	}{
		{ict(2025, 3, 3, 0, 0), true},    // Monday
		{ict(2025, 3, 8, 10, 0), false},  // Saturday
		{ict(2024, 2, 12, 10, 0), false}, // Tết
		{ict(2024, 5, 4, 10, 0), true},   // swapped Saturday
		{ict(2024, 4, 29, 10, 0), false}, // its day off
		{ict(2014, 12, 27, 10, 0), true}, // swapped Saturday before the first listed year
		// Saturday 00:30 in Vietnam, still Friday in UTC.
		{time.Date(2025, 3, 7, 17, 30, 0, 0, time.UTC), false},
		{time.Date(2025, 3, 9, 17, 30, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		if got := cal.IsWorkingDay("", tt.at); got != tt.want {
			t.Errorf("IsWorkingDay(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestWorkingTimeBetween(t *testing.T) {
	cal := newTestCalendar(t)
	tests := []struct {
		name string
		a, b time.Time
		want time.Duration
	}{
		{"whole day", ict(2025, 3, 3, 7, 0), ict(2025, 3, 3, 18, 0), 8 * time.Hour},
		{"inside the morning", ict(2025, 3, 3, 9, 15), ict(2025, 3, 3, 10, 0), 45 * time.Minute},
		{"over the weekend", ict(2025, 3, 7, 16, 0), ict(2025, 3, 10, 9, 0), 2 * time.Hour},
		{"over Tết 2024", ict(2024, 2, 7, 16, 0), ict(2024, 2, 15, 9, 0), 2 * time.Hour},
		{"a year", ict(2025, 1, 1, 0, 0), ict(2026, 1, 1, 0, 0), 250 * 8 * time.Hour},
		{"empty", ict(2025, 3, 3, 10, 0), ict(2025, 3, 3, 10, 0), 0},
		{"reversed", ict(2025, 3, 4, 10, 0), ict(2025, 3, 3, 10, 0), 0},
	}
	for _, tt := range tests {
		if got := cal.WorkingTimeBetween("", tt.a, tt.b); got != tt.want {
			t.Errorf("%s: WorkingTimeBetween = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestHolidays(t *testing.T) {
	cal := newTestCalendar(t)
	got := cal.Holidays("", ict(2024, 2, 1, 0, 0), ict(2024, 2, 14, 0, 0))
	if len(got) != 7 || got[0] != (hoso.Holiday{Date: "2024-02-08", Name: "29 of Lunar New Year"}) || got[6].Date != "2024-02-14" {
		t.Errorf("Holidays(Tết 2024) = %v", got)
	}
	// Every row of the embedded file is a day off on its own date.
	if all := cal.Holidays("", ict(2000, 1, 1, 0, 0), ict(2099, 12, 31, 0, 0)); len(all) != 292 {
		t.Errorf("embedded holidays: %d, want 292", len(all))
	}
	over := newTestCalendar(t, overridesFile)
	if got := over.Holidays("01", ict(2025, 10, 10, 0, 0), ict(2025, 10, 10, 0, 0)); len(got) != 1 || got[0].Name != "Provincial day off (example)" {
		t.Errorf("Holidays(01) = %v", got)
	}
	if got := over.Holidays("79", ict(2025, 10, 10, 0, 0), ict(2025, 10, 10, 0, 0)); len(got) != 0 {
		t.Errorf("Holidays(79) = %v", got)
	}
}

func TestCalendarOverrides(t *testing.T) {
	cal := newTestCalendar(t, overridesFile)
	tests := []struct {
		name     string
		province string
		received time.Time
		days     float64
		want     time.Time
	}{
		{"provincial holiday in 01", "01", ict(2025, 10, 9, 10, 0), 1, ict(2025, 10, 13, 10, 0)},
		{"not in 79", "79", ict(2025, 10, 9, 10, 0), 1, ict(2025, 10, 10, 10, 0)},
		{"not nationally", "", ict(2025, 10, 9, 10, 0), 1, ict(2025, 10, 10, 10, 0)},
		{"79 hours", "79", ict(2025, 3, 3, 7, 0), 0.5, ict(2025, 3, 3, 11, 30)},
		{"79 noon break", "79", ict(2025, 3, 3, 11, 45), 0.5, ict(2025, 3, 3, 17, 0)},
		{"national hours elsewhere", "01", ict(2025, 3, 3, 7, 0), 0.5, ict(2025, 3, 3, 12, 0)},
		{"national swap, working saturday", "", ict(2027, 2, 19, 10, 0), 1, ict(2027, 2, 20, 10, 0)},
		{"national swap applies to provinces", "79", ict(2027, 2, 19, 10, 0), 1, ict(2027, 2, 20, 10, 0)},
		{"national swap, day off", "01", ict(2027, 2, 3, 10, 0), 1, ict(2027, 2, 12, 10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cal.Due(tt.province, tt.received, tt.days)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("Due(%q, %v, %v) = %v, want %v", tt.province, tt.received, tt.days, got, tt.want.UTC())
			}
		})
	}
	if cal.IsWorkingDay("01", ict(2025, 10, 10, 10, 0)) || !cal.IsWorkingDay("79", ict(2025, 10, 10, 10, 0)) {
		t.Error("the holiday of 01 leaks into 79, or is missing in 01")
	}
}

func TestCalendarOverridePrecedence(t *testing.T) {
	// A province's row wins over a national row loaded after it; between
	// national rows, the later file wins.
	first := "province,date,kind,hours,name\n01,2026-03-02,working,,\n,2026-03-03,holiday,,First\n"
	second := "province,date,kind,hours,name\n,2026-03-02,holiday,,National\n,2026-03-03,working,,\n" +
		",2026-03-07,working,08:00-12:00,Half-day Saturday\n"
	cal := newTestCalendar(t, first, second)
	for _, tt := range []struct {
		province string
		at       time.Time
		want     bool
	}{
		{"01", ict(2026, 3, 2, 10, 0), true},
		{"", ict(2026, 3, 2, 10, 0), false},
		{"01", ict(2026, 3, 3, 10, 0), true},
		{"", ict(2026, 3, 3, 10, 0), true},
		{"79", ict(2026, 3, 7, 10, 0), true},
	} {
		if got := cal.IsWorkingDay(tt.province, tt.at); got != tt.want {
			t.Errorf("IsWorkingDay(%q, %v) = %v, want %v", tt.province, tt.at, got, tt.want)
		}
	}
	// The half-day Saturday has its own hours.
	got, _ := cal.Due("", ict(2026, 3, 6, 16, 0), 0.5)
	if want := ict(2026, 3, 7, 11, 0); !got.Equal(want) {
		t.Errorf("Due over a half-day Saturday = %v, want %v", got, want.UTC())
	}
}

func TestCalendarFileErrors(t *testing.T) {
	const header = "province,date,kind,hours,name\n"
	tests := []struct {
		name string
		file string
		want []string // substrings of the message
	}{
		{"empty", "", []string{"empty", "header"}},
		{"bad header", "province,date,kind,name,hours\n", []string{"line 1", "header"}},
		{"wrong column count", header + ",2026-01-02,holiday,\n", []string{"line 2", "5 columns"}},
		{"bare quote", header + `,2026-01-02,holiday,,a"b` + "\n", []string{"line 2", "column 23"}},
		{"province letters", header + "HN,2026-01-02,holiday,,X\n", []string{"line 2", "column province", `"HN"`}},
		{"province three digits", header + "001,2026-01-02,holiday,,X\n", []string{"line 2", "column province", `"001"`}},
		{"date missing", header + "# a comment\n,,holiday,,X\n", []string{"line 3", "column date", `""`}},
		{"date impossible", header + ",2026-02-30,holiday,,X\n", []string{"line 2", "column date", `"2026-02-30"`}},
		{"date short", header + ",2026-2-3,holiday,,X\n", []string{"line 2", "column date", `"2026-2-3"`}},
		{"date year typo", header + ",2206-01-02,holiday,,X\n", []string{"line 2", "column date", `"2206-01-02"`, "2099"}},
		{"kind unknown", header + ",2026-01-02,holliday,,X\n", []string{"line 2", "column kind", `"holliday"`}},
		{"kind empty", header + ",2026-01-02,,,X\n", []string{"line 2", "column kind", `""`}},
		{"holiday with hours", header + ",2026-01-02,holiday,08:00-12:00,X\n", []string{"line 2", "column hours", `"08:00-12:00"`}},
		{"holiday without name", header + ",2026-01-02,holiday,,\n", []string{"line 2", "column name", `""`}},
		{"name with control", header + ",2026-01-02,holiday,,\"a\tb\"\n", []string{"line 2", "column name"}},
		{"hours with date", header + "01,2026-01-02,hours,08:00-12:00,\n", []string{"line 2", "column date", `"2026-01-02"`}},
		{"hours missing", header + "01,,hours,,\n", []string{"line 2", "column hours", `""`}},
		{"hours unpadded", header + "01,,hours,8:00-12:00,\n", []string{"line 2", "column hours", `"8:00-12:00"`}},
		{"hours overlap", header + "01,,hours,08:00-12:00 11:00-17:00,\n", []string{"line 2", "column hours", "overlap"}},
		{"hours reversed", header + "01,,hours,13:00-12:00,\n", []string{"line 2", "column hours", "end after"}},
		{"hours past midnight", header + "01,,hours,08:00-24:30,\n", []string{"line 2", "column hours", `"08:00-24:30"`}},
		{"hours no end", header + "01,,hours,08:00,\n", []string{"line 2", "column hours", `"08:00"`}},
		{"working with bad hours", header + ",2026-01-03,working,08:00-12:60,\n", []string{"line 2", "column hours"}},
		{"repeated date", header + "01,2026-01-02,holiday,,X\n\n01,2026-01-02,working,,\n", []string{"line 4", "column date", "repeats line 2"}},
		{"repeated hours", header + "79,,hours,08:00-12:00,\n79,,hours,09:00-12:00,\n", []string{"line 3", "column kind", "repeats line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hoso.NewCalendar(strings.NewReader(tt.file))
			if hoso.ErrorCode(err) != hoso.EINVALID {
				t.Fatalf("NewCalendar = %v, want an EINVALID error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCalendarFileExtras(t *testing.T) {
	// A byte order mark, CRLF line ends and a file with no rows are fine.
	if _, err := hoso.NewCalendar(strings.NewReader("\uFEFFprovince,date,kind,hours,name\r\n,2026-01-02,holiday,,X\r\n")); err != nil {
		t.Error(err)
	}
	if _, err := hoso.NewCalendar(strings.NewReader("# nothing yet\nprovince,date,kind,hours,name\n")); err != nil {
		t.Error(err)
	}
	// A file is named in its errors.
	path := filepath.Join(t.TempDir(), "hanoi.csv")
	if err := os.WriteFile(path, []byte("province,date,kind,hours,name\n01,2026-13-01,holiday,,X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := hoso.NewCalendar(f); err == nil || !strings.Contains(err.Error(), "hanoi.csv") {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestZeroCalendar(t *testing.T) {
	var cal hoso.Calendar
	got, err := cal.Due("01", ict(2024, 2, 9, 10, 0), 1) // Tết is unknown to it
	if want := ict(2024, 2, 12, 10, 0); err != nil || !got.Equal(want) {
		t.Errorf("zero Calendar Due = %v, %v, want %v", got, err, want.UTC())
	}
}

func TestCalendarConcurrentUse(t *testing.T) {
	cal := newTestCalendar(t, overridesFile)
	want, _ := cal.Due("79", ict(2025, 1, 24, 15, 0), 3)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got, _ := cal.Due("79", ict(2025, 1, 24, 15, 0), 3); !got.Equal(want) {
					t.Errorf("Due = %v, want %v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// drawInstant draws an instant in the years [from, to]. It draws the parts
// separately because rapid favours small values of each draw, which for a
// single range of seconds would cluster every start in its first days.
func drawInstant(t *rapid.T, from, to int) time.Time {
	y := rapid.IntRange(from, to).Draw(t, "year")
	yday := rapid.IntRange(0, 365).Draw(t, "yday")
	minute := rapid.IntRange(0, 24*60-1).Draw(t, "minute")
	return time.Date(y, 1, 1+yday, 0, minute, 0, 0, hoso.VietnamZone)
}

// drawDuration draws up to days working days, to the nanosecond.
func drawDuration(t *rapid.T, label string, days int) time.Duration {
	whole := rapid.IntRange(0, days).Draw(t, label+"_days")
	part := rapid.Int64Range(0, int64(workingDay)).Draw(t, label+"_part")
	return time.Duration(whole)*workingDay + time.Duration(part)
}

func TestWorkingTimeProperties(t *testing.T) {
	cal := newTestCalendar(t, overridesFile, "province,date,kind,hours,name\n,2026-03-07,working,08:00-10:30 22:00-24:00,Odd hours\n")
	rapid.Check(t, func(t *rapid.T) {
		province := rapid.SampledFrom([]string{"", "01", "79"}).Draw(t, "province")
		start := drawInstant(t, 2013, 2037)
		if rapid.Bool().Draw(t, "far") {
			start = drawInstant(t, 1900, 2200)
		}
		start = start.Add(time.Duration(rapid.Int64Range(0, int64(time.Minute)-1).Draw(t, "nsec")))
		if rapid.Bool().Draw(t, "inside") {
			// The next working moment: inside working hours.
			start = cal.AddWorkingTime(province, start, time.Nanosecond).Add(-time.Nanosecond)
		}
		d1, d2 := drawDuration(t, "d1", 400), drawDuration(t, "d2", 400)
		if d1 > d2 {
			d1, d2 = d2, d1
		}
		end1 := cal.AddWorkingTime(province, start, d1)
		end2 := cal.AddWorkingTime(province, start, d2)
		if end1.After(end2) {
			t.Fatalf("not monotonic: +%v = %v after +%v = %v", d1, end1, d2, end2)
		}
		if end1.Before(start) || end1.Location() != time.UTC {
			t.Fatalf("+%v = %v: before the start or not UTC", d1, end1)
		}
		for _, c := range []struct {
			d   time.Duration
			end time.Time
		}{{d1, end1}, {d2, end2}} {
			if got := cal.WorkingTimeBetween(province, start, c.end); got != c.d {
				t.Fatalf("WorkingTimeBetween(%v, %v) = %v, want %v", start, c.end, got, c.d)
			}
		}
		// Additivity checks the O(1) day sums against the walk.
		if a, b := cal.WorkingTimeBetween(province, start, end1), cal.WorkingTimeBetween(province, end1, end2); a+b != d2 {
			t.Fatalf("%v + %v != %v", a, b, d2)
		}
	})
}

// TestAddWorkingTimeByMinute checks the day walk against counting working
// minutes one at a time, with IsWorkingDay and the national hours.
func TestAddWorkingTimeByMinute(t *testing.T) {
	cal := newTestCalendar(t)
	rapid.Check(t, func(t *rapid.T) {
		start := drawInstant(t, 2014, 2036)
		minutes := rapid.IntRange(1, 10*8*60).Draw(t, "minutes")
		at := start
		for left := minutes; ; at = at.Add(time.Minute) {
			h, m, _ := at.Clock()
			clock := h*60 + m
			if cal.IsWorkingDay("", at) && (8*60 <= clock && clock < 12*60 || 13*60 <= clock && clock < 17*60) {
				if left--; left == 0 {
					at = at.Add(time.Minute)
					break
				}
			}
		}
		if got := cal.AddWorkingTime("", start, time.Duration(minutes)*time.Minute); !got.Equal(at) {
			t.Fatalf("AddWorkingTime(%v, %dm) = %v, want %v", start, minutes, got, at)
		}
	})
}

func FuzzCalendarFile(f *testing.F) {
	f.Add(overridesFile)
	f.Add("province,date,kind,hours,name\n01,,hours,00:00-24:00,\n01,2026-01-03,working,00:00-00:01 23:59-24:00,\n")
	f.Add("province,date,kind,hours,name\n,2000-01-01,holiday,,A\n,2099-12-31,holiday,,B\n")
	f.Add("province,date,kind,hours,name\n\"01\n\",2026-01-02,holiday,,\"a\"\"b\"\n")
	f.Add("\uFEFF# c\nprovince,date,kind,hours,name\r\n")
	f.Fuzz(func(t *testing.T, file string) {
		cal, err := hoso.NewCalendar(strings.NewReader(file))
		if err != nil {
			if hoso.ErrorCode(err) != hoso.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		for _, p := range []string{"", "01", "79"} {
			received := ict(2026, 1, 2, 16, 30)
			due, err := cal.Due(p, received, 2.5)
			if err != nil || due.Before(received) {
				t.Fatalf("Due(%q) = %v, %v", p, due, err)
			}
			if got := cal.WorkingTimeBetween(p, received, due); got != 20*time.Hour {
				t.Fatalf("WorkingTimeBetween(%q) = %v, want 20h", p, got)
			}
		}
	})
}

func BenchmarkDue(b *testing.B) {
	cal := newTestCalendar(b, overridesFile)
	start := ict(2025, 1, 1, 0, 0)
	days := []float64{0.5, 1, 3, 5, 10, 15, 30}
	var i int
	for b.Loop() {
		received := start.Add(time.Duration(i%20000) * 37 * time.Minute)
		if _, err := cal.Due("79", received, days[i%len(days)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
