package hoso

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// VietnamZone is Asia/Ho_Chi_Minh: UTC+7, no daylight saving time. A fixed
// zone rather than time.LoadLocation, so that no tzdata is needed.
var VietnamZone = time.FixedZone("ICT", 7*60*60)

// holidaysCSV is the national calendar: public holidays and the decreed
// swaps (a day off whose worked_instead_on Saturday becomes a working day).
//
//go:embed data/holidays-vn.csv
var holidaysCSV []byte

const (
	zoneOffset  = 7 * 60 * 60 // VietnamZone's offset, in seconds
	secondsADay = 24 * 60 * 60
	aDay        = 24 * time.Hour

	// workingDay is one statutory processing day: Due counts days × 8 hours
	// whatever a province's office hours are.
	workingDay = 8 * time.Hour

	// The dates an override file may name. Wider would only let a typo in
	// the year (2206) blow up the per-day tables.
	minOverrideYear = "2000"
	maxOverrideYear = "2099"

	maxNameLength = 200
)

// defaultHours are the national office hours: 08:00–12:00, 13:00–17:00.
var defaultHours = []period{{8 * time.Hour, 12 * time.Hour}, {13 * time.Hour, 17 * time.Hour}}

// Holiday is one day off of a calendar, as the API lists it.
type Holiday struct {
	Date string `json:"date"` // YYYY-MM-DD, local date
	Name string `json:"name"`
}

// Calendar is the working calendar: weekdays, office hours, public holidays
// and decreed swaps, nationally and per province. It is immutable after
// NewCalendar and safe for concurrent use. The zero Calendar knows no
// holidays: Monday to Friday with the national hours.
type Calendar struct {
	national  *rules
	provinces map[string]*rules // only provinces with overrides
}

// period is a working period [start, end) as offsets from local midnight.
type period struct{ start, end time.Duration }

// schedule is the working periods of one day; an empty one is a day off.
type schedule struct {
	periods []period
	total   time.Duration
}

func newSchedule(ps []period) schedule {
	s := schedule{periods: ps}
	for _, p := range ps {
		s.total += p.end - p.start
	}
	return s
}

// rules is the compiled calendar of one scope. Every date between first and
// first+len(days)-1 is looked up in a dense table, so that walking day by day
// costs an index per day; outside it only the weekday rule applies.
type rules struct {
	first    int64    // day number (days since 1970-01-01, local) of days[0]
	days     []uint16 // per date: index into scheds
	prefix   []int64  // prefix[i]: working minutes of days[:i]
	scheds   []schedule
	holidays []dayHoliday // explicit days off, by date
}

// Indexes of scheds shared by every rules.
const (
	schedOff     = 0
	schedRegular = 1
)

type dayHoliday struct {
	day  int64
	name string
}

// weekdayRules is what a zero Calendar uses.
var weekdayRules = &rules{scheds: []schedule{{}, newSchedule(defaultHours)}}

// dayRule is what a source says about one date.
type dayRule struct {
	off   bool
	hours []period // hours of a working day; nil: the scope's regular hours
	name  string
}

// scope collects the rules of the whole country or of one province.
type scope struct {
	regular []period // nil: inherited from the national scope
	days    map[int64]dayRule
}

func newScope() *scope { return &scope{days: map[int64]dayRule{}} }

// NewCalendar returns the national calendar (the embedded holidays) with the
// operator overrides read from each reader, in the calendar file format of
// docs/calendar.md. Later readers win over earlier ones for the same date;
// a province's rows win over national rows whatever their order. A reader
// with a Name method (an *os.File) is named in errors.
func NewCalendar(overrides ...io.Reader) (*Calendar, error) {
	embedded, err := nationalDays()
	if err != nil {
		return nil, err
	}
	national := newScope()
	national.regular = defaultHours
	maps.Copy(national.days, embedded)
	provinces := map[string]*scope{}
	for i, r := range overrides {
		src := fmt.Sprintf("calendar file %d", i+1)
		if n, ok := r.(interface{ Name() string }); ok {
			src = fmt.Sprintf("calendar file %q", n.Name())
		}
		if err := readOverrides(r, src, national, provinces); err != nil {
			return nil, err
		}
	}
	c := &Calendar{provinces: make(map[string]*rules, len(provinces))}
	if c.national, err = compile(national.regular, national.days); err != nil {
		return nil, err
	}
	for code, p := range provinces {
		regular := p.regular
		if regular == nil {
			regular = national.regular
		}
		if c.provinces[code], err = compile(regular, national.days, p.days); err != nil {
			return nil, fmt.Errorf("province %s: %w", code, err)
		}
	}
	return c, nil
}

// nationalDays parses the embedded holidays once; every Calendar copies it.
var nationalDays = sync.OnceValues(func() (map[int64]dayRule, error) {
	cr := csv.NewReader(bytes.NewReader(holidaysCSV))
	cr.FieldsPerRecord = 3
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("embedded holidays: %w", err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], []string{"date", "name", "worked_instead_on"}) {
		return nil, errors.New("embedded holidays: bad header")
	}
	days := make(map[int64]dayRule, 2*len(recs))
	for i, rec := range recs[1:] {
		off, ok := parseDay(rec[0])
		if !ok {
			return nil, fmt.Errorf("embedded holidays line %d: bad date %q", i+2, rec[0])
		}
		days[off] = dayRule{off: true, name: rec[1]}
		if rec[2] == "" {
			continue
		}
		worked, ok := parseDay(rec[2])
		if !ok {
			return nil, fmt.Errorf("embedded holidays line %d: bad date %q", i+2, rec[2])
		}
		days[worked] = dayRule{name: "Working day (instead of " + rec[0] + ")"}
	}
	return days, nil
})

// compile builds the rules of a scope from its regular hours and its dated
// rules, later maps overriding earlier ones.
func compile(regular []period, layers ...map[int64]dayRule) (*rules, error) {
	merged := map[int64]dayRule{}
	for _, l := range layers {
		maps.Copy(merged, l)
	}
	r := &rules{scheds: []schedule{schedOff: {}, schedRegular: newSchedule(regular)}}
	if len(merged) == 0 {
		return r, nil
	}
	keys := slices.Sorted(maps.Keys(merged))
	r.first = keys[0]
	r.days = make([]uint16, keys[len(keys)-1]-keys[0]+1)
	r.prefix = make([]int64, len(r.days)+1)
	interned := map[string]uint16{}
	for i := range r.days {
		day := r.first + int64(i)
		idx := uint16(schedRegular)
		rule, ok := merged[day]
		switch {
		case !ok:
			if weekend(day) {
				idx = schedOff
			}
		case rule.off:
			idx = schedOff
			r.holidays = append(r.holidays, dayHoliday{day, rule.name})
		case rule.hours != nil:
			key := formatHours(rule.hours)
			var seen bool
			if idx, seen = interned[key]; !seen {
				if len(r.scheds) > math.MaxUint16 {
					return nil, Errorf(EINVALID, "calendar: more than %d distinct working hours", math.MaxUint16)
				}
				idx = uint16(len(r.scheds))
				interned[key] = idx
				r.scheds = append(r.scheds, newSchedule(rule.hours))
			}
		}
		r.days[i] = idx
		r.prefix[i+1] = r.prefix[i] + int64(r.scheds[idx].total/time.Minute)
	}
	return r, nil
}

func (c *Calendar) rules(province string) *rules {
	if c == nil || c.national == nil {
		return weekdayRules
	}
	if r, ok := c.provinces[province]; ok {
		return r
	}
	return c.national
}

// at returns the schedule of a local date.
func (r *rules) at(day int64) *schedule {
	if i := day - r.first; i >= 0 && i < int64(len(r.days)) {
		return &r.scheds[r.days[i]]
	}
	if weekend(day) {
		return &r.scheds[schedOff]
	}
	return &r.scheds[schedRegular]
}

// wholeDays returns the working time of the dates [from, to), in O(1): the
// table's prefix sums inside it, a count of weekdays outside.
func (r *rules) wholeDays(from, to int64) time.Duration {
	var minutes int64
	regular := int64(r.scheds[schedRegular].total / time.Minute)
	lo, hi := r.first, r.first+int64(len(r.days))
	if from < to && from < lo {
		end := min(to, lo)
		minutes += weekdays(from, end) * regular
		from = end
	}
	if from < to && from < hi {
		end := min(to, hi)
		minutes += r.prefix[end-lo] - r.prefix[from-lo]
		from = end
	}
	if from < to {
		minutes += weekdays(from, to) * regular
	}
	if minutes > int64(math.MaxInt64/time.Minute) {
		return math.MaxInt64
	}
	return time.Duration(minutes) * time.Minute
}

// IsWorkingDay reports whether the local date of t is a working day in the
// province ("" for the national rules).
func (c *Calendar) IsWorkingDay(province string, t time.Time) bool {
	day, _ := split(t)
	return c.rules(province).at(day).total > 0
}

// AddWorkingTime returns the instant at which d of working time has elapsed
// counting from start; from outside working hours counting begins at the
// next working period. Time running out exactly at the end of a period gives
// that end (17:00), not the next morning. d <= 0 returns start. In UTC.
func (c *Calendar) AddWorkingTime(province string, start time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return start.UTC()
	}
	r := c.rules(province)
	day, off := split(start)
	for ; ; day, off = day+1, 0 {
		s := r.at(day)
		if off == 0 && d > s.total {
			d -= s.total
			continue
		}
		for _, p := range s.periods {
			if p.end <= off {
				continue
			}
			from := max(off, p.start)
			if avail := p.end - from; d > avail {
				d -= avail
				continue
			}
			return instant(day, from+d)
		}
	}
}

// Due returns the statutory due moment, in UTC, of a dossier received at
// received with a processing time of days working days, each of 8 working
// hours counted to the nearest minute.
func (c *Calendar) Due(province string, received time.Time, days float64) (time.Time, error) {
	if math.IsNaN(days) || math.IsInf(days, 0) || days <= 0 || days > MaxDays {
		return time.Time{}, FieldErrorf("days", "must be a number of working days above 0 and at most %d, got %v", MaxDays, days)
	}
	// A tolerance, as 0.29*100 is not exactly 29 in binary floating point.
	if h := days * 100; math.Abs(h-math.Round(h)) > 1e-6 {
		return time.Time{}, FieldErrorf("days", "must have at most 2 decimals, got %v", days)
	}
	minutes := math.Round(days * float64(workingDay/time.Minute))
	return c.AddWorkingTime(province, received, time.Duration(minutes)*time.Minute), nil
}

// WorkingTimeBetween returns the working time in [a, b), 0 if b <= a.
func (c *Calendar) WorkingTimeBetween(province string, a, b time.Time) time.Duration {
	if !a.Before(b) {
		return 0
	}
	r := c.rules(province)
	da, oa := split(a)
	db, ob := split(b)
	if da == db {
		return r.at(da).between(oa, ob)
	}
	total := r.at(da).between(oa, aDay)
	total = addSat(total, r.wholeDays(da+1, db))
	return addSat(total, r.at(db).between(0, ob))
}

// between returns the working time of the day's schedule in [lo, hi).
func (s *schedule) between(lo, hi time.Duration) time.Duration {
	var t time.Duration
	for _, p := range s.periods {
		if a, b := max(p.start, lo), min(p.end, hi); a < b {
			t += b - a
		}
	}
	return t
}

// Holidays returns the days off listed by the calendar (not ordinary
// weekends) for the province, between the local dates of from and to
// inclusive, in date order.
func (c *Calendar) Holidays(province string, from, to time.Time) []Holiday {
	hs := c.rules(province).holidays
	lo, _ := split(from)
	hi, _ := split(to)
	i := sort.Search(len(hs), func(i int) bool { return hs[i].day >= lo })
	var out []Holiday
	for ; i < len(hs) && hs[i].day <= hi; i++ {
		out = append(out, Holiday{Date: formatDay(hs[i].day), Name: hs[i].name})
	}
	return out
}

// split returns the local date of t as a day number and t's offset into it.
func split(t time.Time) (day int64, off time.Duration) {
	s := t.Unix() + zoneOffset
	day = floorDiv(s, secondsADay)
	return day, time.Duration(s-day*secondsADay)*time.Second + time.Duration(t.Nanosecond())
}

// instant is the inverse of split, in UTC.
func instant(day int64, off time.Duration) time.Time {
	return time.Unix(day*secondsADay-zoneOffset, int64(off)).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// weekend reports whether a day number is a Saturday or a Sunday; day 0,
// 1970-01-01, was a Thursday.
func weekend(day int64) bool {
	wd := day + 4 - floorDiv(day+4, 7)*7 // 0 Sunday … 6 Saturday
	return wd == 0 || wd == 6
}

// weekdays returns the number of Mondays to Fridays among the dates [a, b).
func weekdays(a, b int64) int64 { return weekdaysBefore(b) - weekdaysBefore(a) }

// weekdaysBefore counts Mondays to Fridays among day numbers [0, n) (negative
// for n < 0): 5 a week, plus those of the part week starting on a Thursday.
func weekdaysBefore(n int64) int64 {
	q := floorDiv(n, 7)
	return 5*q + [7]int64{0, 1, 2, 2, 2, 3, 4}[n-7*q]
}

func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func parseDay(s string) (int64, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != len(time.DateOnly) {
		return 0, false
	}
	return floorDiv(t.Unix(), secondsADay), true
}

func formatDay(day int64) string {
	return time.Unix(day*secondsADay, 0).UTC().Format(time.DateOnly)
}

// The override file: a CSV with this header; see docs/calendar.md.
var overrideHeader = []string{"province", "date", "kind", "hours", "name"}

const (
	colProvince = iota
	colDate
	colKind
	colHours
	colName
)

// Kinds of override rows.
const (
	kindHoliday = "holiday" // the date is a day off
	kindWorking = "working" // the date is a working day (a swapped Saturday)
	kindHours   = "hours"   // the province's regular working periods
)

// readOverrides reads one override file into the national and provincial
// scopes. Each bad row is an EINVALID error naming the line, the column and
// the value.
func readOverrides(r io.Reader, src string, national *scope, provinces map[string]*scope) error {
	cr := csv.NewReader(skipBOM(r))
	cr.Comment = '#'
	cr.FieldsPerRecord = len(overrideHeader)
	header, err := cr.Read()
	if err == io.EOF {
		return Errorf(EINVALID, "%s: empty, want the header %s", src, strings.Join(overrideHeader, ","))
	}
	if err != nil {
		return csvError(src, err)
	}
	if !slices.Equal(header, overrideHeader) {
		line, _ := cr.FieldPos(0)
		return Errorf(EINVALID, "%s line %d: header %q, want %s", src, line, strings.Join(header, ","), strings.Join(overrideHeader, ","))
	}
	seen := map[string]int{} // province|date or province|hours → line
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(src, err)
		}
		bad := func(col int, format string, args ...any) error {
			line, _ := cr.FieldPos(col)
			return Errorf(EINVALID, "%s line %d, column %s: %q: %s",
				src, line, overrideHeader[col], rec[col], fmt.Sprintf(format, args...))
		}
		province, date, kind, hours, name := rec[colProvince], rec[colDate], rec[colKind], rec[colHours], rec[colName]
		if province != "" && !validProvince(province) {
			return bad(colProvince, "want empty (all provinces) or a 2-digit province code like 01")
		}
		if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) || utf8.RuneCountInString(name) > maxNameLength {
			return bad(colName, "want at most %d printable characters", maxNameLength)
		}
		var day int64
		switch kind {
		case kindHoliday, kindWorking:
			var ok bool
			if day, ok = parseDay(date); !ok {
				return bad(colDate, "want a date YYYY-MM-DD")
			}
			if y := date[:4]; y < minOverrideYear || y > maxOverrideYear {
				return bad(colDate, "want a year from %s to %s", minOverrideYear, maxOverrideYear)
			}
		case kindHours:
			if date != "" {
				return bad(colDate, "must be empty for kind hours (for one date use kind working with hours)")
			}
		default:
			return bad(colKind, "want %s, %s or %s", kindHoliday, kindWorking, kindHours)
		}
		var periods []period
		switch {
		case kind == kindHoliday && hours != "":
			return bad(colHours, "must be empty for a holiday")
		case kind == kindHoliday && name == "":
			return bad(colName, "a holiday needs a name")
		case kind == kindHours && hours == "":
			return bad(colHours, "want working periods like 08:00-12:00 13:00-17:00")
		case hours != "":
			if periods, err = parseHours(hours); err != nil {
				return bad(colHours, "%v", err)
			}
		}
		key := province + "|" + date
		if kind == kindHours {
			key = province + "|hours"
		}
		if prev, dup := seen[key]; dup {
			col := colDate
			if kind == kindHours {
				col = colKind
			}
			return bad(col, "repeats line %d for the same province", prev)
		}
		seen[key], _ = cr.FieldPos(0)

		s := national
		if province != "" {
			if s = provinces[province]; s == nil {
				s = newScope()
				provinces[province] = s
			}
		}
		switch kind {
		case kindHours:
			s.regular = periods
		case kindHoliday:
			s.days[day] = dayRule{off: true, name: name}
		case kindWorking:
			s.days[day] = dayRule{hours: periods, name: name}
		}
	}
}

func csvError(src string, err error) error {
	if pe, ok := errors.AsType[*csv.ParseError](err); ok {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return Errorf(EINVALID, "%s line %d: want %d columns: %s", src, pe.Line, len(overrideHeader), strings.Join(overrideHeader, ","))
		}
		return Errorf(EINVALID, "%s line %d, column %d: %v", src, pe.Line, pe.Column, pe.Err)
	}
	return Errorf(EINVALID, "%s: %v", src, err)
}

// skipBOM drops the byte order mark spreadsheet programs put first.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, _ := br.Peek(3); string(b) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	return br
}

func validProvince(s string) bool {
	return len(s) == 2 && '0' <= s[0] && s[0] <= '9' && '0' <= s[1] && s[1] <= '9'
}

// parseHours parses working periods "08:00-12:00 13:00-17:00": space
// separated, in order, not overlapping, within 00:00–24:00.
func parseHours(s string) ([]period, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("want working periods like 08:00-12:00 13:00-17:00")
	}
	ps := make([]period, 0, len(fields))
	for _, f := range fields {
		from, to, ok := strings.Cut(f, "-")
		start, ok1 := parseClock(from)
		end, ok2 := parseClock(to)
		if !ok || !ok1 || !ok2 {
			return nil, fmt.Errorf("period %q: want HH:MM-HH:MM", f)
		}
		if start >= end {
			return nil, fmt.Errorf("period %q: must end after it starts", f)
		}
		if n := len(ps); n > 0 && start < ps[n-1].end {
			return nil, fmt.Errorf("period %q: periods must be in order and not overlap", f)
		}
		ps = append(ps, period{start, end})
	}
	return ps, nil
}

// parseClock parses HH:MM from 00:00 to 24:00.
func parseClock(s string) (time.Duration, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, true
}

func formatHours(ps []period) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		from, to := int(p.start/time.Minute), int(p.end/time.Minute)
		fmt.Fprintf(&b, "%02d:%02d-%02d:%02d", from/60, from%60, to/60, to%60)
	}
	return b.String()
}
