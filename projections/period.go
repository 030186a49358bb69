package projections

import (
	"fmt"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Grains of the aggregate tables. A day is hoso.LocalDate (days since
// 1970-01-01 in Asia/Ho_Chi_Minh); a month is year*12 + month-1; a year is
// the year. Every delta is written at all three grains, so a long period
// reads whole years and months instead of every day.
const (
	grainDay   = 0
	grainMonth = 1
	grainYear  = 2
)

// civil returns the calendar date of a local day number.
func civil(day int64) (year int, month time.Month, d int) {
	return time.Unix(day*86400, 0).UTC().Date()
}

// dayOf returns the local day number of a calendar date.
func dayOf(year int, month time.Month, d int) int64 {
	return time.Date(year, month, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func monthOf(day int64) int64 {
	y, m, _ := civil(day)
	return int64(y)*12 + int64(m) - 1
}

// segment is a range of periods of one grain, bounds included.
type segment struct {
	grain  int
	lo, hi int64
}

// rangeSegments covers the days [from, to] with the fewest rows: the days
// up to the first whole month, the months up to the first whole year, the
// whole years, then months and days again at the tail.
func rangeSegments(from, to int64) []segment {
	var segs []segment
	add := func(g int, lo, hi int64) {
		if n := len(segs); n > 0 && segs[n-1].grain == g && segs[n-1].hi+1 == lo {
			segs[n-1].hi = hi
			return
		}
		segs = append(segs, segment{g, lo, hi})
	}
	for d := from; d <= to; {
		y, m, dd := civil(d)
		nextMonth := dayOf(y, m+1, 1)
		nextYear := dayOf(y+1, 1, 1)
		switch {
		case m == time.January && dd == 1 && nextYear-1 <= to:
			add(grainYear, int64(y), int64(y))
			d = nextYear
		case dd == 1 && nextMonth-1 <= to:
			add(grainMonth, int64(y)*12+int64(m)-1, int64(y)*12+int64(m)-1)
			d = nextMonth
		default:
			end := min(nextMonth-1, to)
			add(grainDay, d, end)
			d = end + 1
		}
	}
	return segs
}

// prefixSegments covers every day up to and including day: all earlier
// years, the earlier months of day's year, the days of day's month.
func prefixSegments(day int64) []segment {
	y, m, _ := civil(day)
	segs := []segment{{grainYear, minPeriod, int64(y) - 1}}
	if m > time.January {
		segs = append(segs, segment{grainMonth, int64(y) * 12, int64(y)*12 + int64(m) - 2})
	}
	return append(segs, segment{grainDay, dayOf(y, m, 1), day})
}

// minPeriod is below any period the projector writes.
const minPeriod = -1 << 40

// parseDate reads a local date YYYY-MM-DD as a day number.
func parseDate(field, s string) (int64, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, hoso.FieldErrorf(field, "must be a date YYYY-MM-DD, got %q", s)
	}
	return t.Unix() / 86400, nil
}

// formatDay renders a day number as YYYY-MM-DD.
func formatDay(day int64) string {
	y, m, d := civil(day)
	return fmt.Sprintf("%04d-%02d-%02d", y, int(m), d)
}

// startOfDay is the instant local day begins in Vietnam.
func startOfDay(day int64) time.Time {
	y, m, d := civil(day)
	return time.Date(y, m, d, 0, 0, 0, 0, hoso.VietnamZone)
}

// noonOf is an instant inside local day day, away from both midnights, for
// registry look-ups that go by date.
func noonOf(day int64) time.Time { return startOfDay(day).Add(12 * time.Hour) }
