package hoso

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// The embedded registry; docs/units.md cites the sources of each file.
var (
	// GSO units 2019-12-01 … 2025-03-01, one row per period.
	//go:embed data/units-vn-history.csv
	unitsHistoryCSV []byte

	// The two-level system from 2025-07-01 (Decision 19/2025/QĐ-TTg).
	//go:embed data/units-vn-2025.csv
	unitsReformCSV []byte

	// Changes after the reform, in the history format (Đồng Nai, 2026-04-30).
	//go:embed data/units-vn-2026.csv
	unitsLaterCSV []byte

	// Old ward → new commune at the reform.
	//go:embed data/units-vn-2025-mapping.csv
	unitsMappingCSV []byte
)

// Level is the tier of a unit: the three GSO tiers, and office for an
// operator's own desks (departments, public-service centres).
type Level string

// The levels, from the top.
const (
	LevelProvince Level = "province"
	LevelDistrict Level = "district"
	LevelWard     Level = "ward"
	LevelOffice   Level = "office"
)

// ParseLevel parses a level name; anything else is EINVALID on "level".
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case LevelProvince, LevelDistrict, LevelWard, LevelOffice:
		return l, nil
	}
	return "", FieldErrorf("level", "must be province, district, ward or office, got %q", s)
}

// rank orders the levels from the top; it is -1 for an unknown level.
func (l Level) rank() int {
	switch l {
	case LevelProvince:
		return 0
	case LevelDistrict:
		return 1
	case LevelWard:
		return 2
	case LevelOffice:
		return 3
	}
	return -1
}

// Unit is one administrative unit during one period.
type Unit struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	Level     Level  `json:"level"`
	Kind      string `json:"kind"`             // Vietnamese type: Tỉnh, Quận, Phường, Xã…
	Parent    string `json:"parent,omitempty"` // "" for a province
	ValidFrom string `json:"valid_from"`       // local date, inclusive; "" = since ever
	ValidTo   string `json:"valid_to"`         // local date, exclusive; "" = still so
}

// Successor is a commune an old ward went (wholly or in part) into at the
// 2025 reform, with the mapping table's note (Nhập toàn bộ, Nhập một phần…).
type Successor struct {
	Code string `json:"code"`
	Note string `json:"note"`
}

// NamedReader is an operator units file and the name its errors give.
type NamedReader struct {
	Name string
	R    io.Reader
}

// Units is the effective-dated registry. It is immutable after LoadUnits and
// safe for concurrent use.
type Units struct {
	rows       []unitRow           // sorted by code, then from
	byCode     map[string]unitSpan // a code's rows in rows
	children   map[string][]int32  // parent code → rows having it, in rows order
	successors map[string][]Successor
}

// unitRow is a Unit with its period as day numbers (days since 1970-01-01,
// local), so that a lookup compares integers.
type unitRow struct {
	Unit
	from, to int64 // [from, to); unitsSinceEver and unitsForever when open
	src      int32 // index of the file in the loader's names
	line     int32 // line in that file, for errors
	next     int32 // the builder's previous row of the same code, -1 for none
	dead     bool  // replaced by a later layer (its period became empty)
}

type unitSpan struct{ lo, hi int32 }

const (
	unitsSinceEver = math.MinInt64
	unitsForever   = math.MaxInt64

	unitsSecondsADay = 24 * 60 * 60
	unitsMaxErrors   = 20 // per load: enough to fix a file in one go
	unitsMaxName     = 200
	unitsMaxKind     = 100
	unitsMaxOffice   = 64
)

// ReformDate is the local date the two-level system took effect (Decision
// 19/2025/QĐ-TTg): the GSO history's open rows end then, the 2025 rows
// begin, and Successors say where the old wards went.
const ReformDate = "2025-07-01"

const unitsReformDate = ReformDate

var unitsReform, _ = unitsParseDay(unitsReformDate)

// unitsEmbeddedRows sizes the builder for the embedded files.
const unitsEmbeddedRows = 13065 + 3355 + 11

// unitsZoneOffset is VietnamZone's offset in seconds. The zone is fixed (no
// daylight saving), so the local date of an instant is plain arithmetic.
var unitsZoneOffset = func() int64 {
	_, off := time.Unix(0, 0).In(VietnamZone).Zone()
	return int64(off)
}()

// unitsHeader is the history and operator file format.
var unitsHeader = [unitsCols]string{"code", "name", "level", "kind", "parent", "valid_from", "valid_to"}

const (
	unitsColCode = iota
	unitsColName
	unitsColLevel
	unitsColKind
	unitsColParent
	unitsColFrom
	unitsColTo
	unitsCols
)

// LoadUnits loads the embedded registry plus operator CSVs (see
// docs/units.md), each read in turn as a layer over what came before: a row
// closes the earlier layers' row of its code open on its valid_from. Bad rows
// are EINVALID errors naming the file, line, column and value.
//
// The embedded files are read once per process; without operator files every
// call returns that same (immutable) registry.
func LoadUnits(extra ...NamedReader) (*Units, error) {
	base, err := unitsEmbedded()
	if err != nil || len(extra) == 0 {
		return base.units, err
	}
	b := &unitsBuilder{
		rows:  append(make([]unitRow, 0, len(base.units.rows)+256), base.units.rows...),
		codes: maps.Clone(base.codes),
		files: slices.Clone(base.files),
	}
	for _, x := range extra {
		if x.R == nil {
			return nil, Errorf(EINVALID, "%s: no reader", x.Name)
		}
		if err := b.layer(unitsFile{name: x.Name, r: x.R}); err != nil {
			return nil, err
		}
	}
	u := b.build()
	u.successors = base.units.successors
	return u, nil
}

// unitsBase is the embedded registry with the builder's view of its rows,
// from which operator layers start.
type unitsBase struct {
	units *Units
	codes map[string]unitsCode
	files []unitsSource
}

var unitsEmbedded = sync.OnceValues(func() (*unitsBase, error) {
	b := &unitsBuilder{codes: make(map[string]unitsCode, 16384), rows: make([]unitRow, 0, unitsEmbeddedRows)}
	// The GSO history and the 2025 units never overlap: one layer.
	if err := b.layer(
		unitsFile{name: "data/units-vn-history.csv", r: bytes.NewReader(unitsHistoryCSV), history: true},
		unitsFile{name: "data/units-vn-2025.csv", r: bytes.NewReader(unitsReformCSV), reform: true},
	); err != nil {
		return &unitsBase{}, err
	}
	if err := b.layer(unitsFile{name: "data/units-vn-2026.csv", r: bytes.NewReader(unitsLaterCSV)}); err != nil {
		return &unitsBase{}, err
	}
	u := b.build()
	var err error
	if u.successors, err = unitsReadMapping(unitsMappingCSV); err != nil {
		return &unitsBase{}, err
	}
	// build linked each code's rows, which are u.rows[lo:hi].
	codes := make(map[string]unitsCode, len(u.byCode))
	for code, sp := range u.byCode {
		codes[code] = unitsCode{head: sp.hi - 1, first: sp.lo}
	}
	return &unitsBase{units: u, codes: codes, files: b.files}, nil
})

// Len returns the number of rows (unit periods) loaded.
func (u *Units) Len() int { return len(u.rows) }

// At returns the unit with this code as it stood at instant t (on the local
// date of t in Vietnam), false if none.
func (u *Units) At(code string, t time.Time) (Unit, bool) {
	if r := u.at(code, unitsDayOf(t)); r != nil {
		return r.Unit, true
	}
	return Unit{}, false
}

// OnDate is At for a civil date: date's year, month and day as written in its
// own location, so time.Parse(time.DateOnly, s) (UTC midnight) and a local
// midnight both name the same day.
func (u *Units) OnDate(code string, date time.Time) (Unit, bool) {
	y, m, d := date.Date()
	if r := u.at(code, unitsCivilDay(y, m, d)); r != nil {
		return r.Unit, true
	}
	return Unit{}, false
}

// History returns every period of code, oldest first: the unit's names,
// kinds and parents over time, and, for a code reused by the 2025 reform,
// both units.
func (u *Units) History(code string) []Unit {
	sp, ok := u.byCode[code]
	if !ok {
		return nil
	}
	out := make([]Unit, 0, sp.hi-sp.lo)
	for _, r := range u.rows[sp.lo:sp.hi] {
		out = append(out, r.Unit)
	}
	return out
}

// Children returns the units whose parent is code at instant t, sorted by code.
func (u *Units) Children(code string, t time.Time) []Unit {
	day := unitsDayOf(t)
	var out []Unit
	for _, i := range u.children[code] {
		if r := &u.rows[i]; r.from <= day && day < r.to {
			out = append(out, r.Unit)
		}
	}
	return out
}

// Ancestors returns the chain from the unit's parent up to its province at t,
// nearest first; nil for an unknown code or a province.
func (u *Units) Ancestors(code string, t time.Time) []Unit {
	day := unitsDayOf(t)
	r := u.at(code, day)
	var out []Unit
	// Levels only go up along a chain (checked on load), so 3 steps reach
	// the top; the bound is a guard, not a rule.
	for depth := 0; r != nil && r.Parent != "" && depth < 8; depth++ {
		if r = u.at(r.Parent, day); r != nil {
			out = append(out, r.Unit)
		}
	}
	return out
}

// Province returns the province code of the unit at t: its own code for a
// province, "" if the code is unknown then. It does not allocate: ingest asks
// it for every event, to pick the working calendar.
func (u *Units) Province(code string, t time.Time) string {
	day := unitsDayOf(t)
	r := u.at(code, day)
	for depth := 0; r != nil && depth < 8; depth++ {
		if r.Level == LevelProvince {
			return r.Code
		}
		if r.Parent == "" {
			return ""
		}
		r = u.at(r.Parent, day)
	}
	return ""
}

// Descendants returns the units of the given level inside code's subtree at
// t (code "" is the whole country), sorted by code. If code's own level is
// level, it returns just that unit; a level above code's gives nil.
func (u *Units) Descendants(code string, level Level, t time.Time) []Unit {
	want := level.rank()
	if want < 0 {
		return nil
	}
	day := unitsDayOf(t)
	if code != "" {
		r := u.at(code, day)
		if r == nil {
			return nil
		}
		if r.Level == level {
			return []Unit{r.Unit}
		}
		if r.Level.rank() > want {
			return nil
		}
	}
	var idx []int32
	u.walk(code, level, want, day, &idx)
	// Sort indexes, not 112-byte Units, then copy each unit once.
	slices.SortFunc(idx, func(x, y int32) int { return strings.Compare(u.rows[x].Code, u.rows[y].Code) })
	if len(idx) == 0 {
		return nil
	}
	out := make([]Unit, len(idx))
	for i, j := range idx {
		out[i] = u.rows[j].Unit
	}
	return out
}

// walk appends the rows of level below parent, going down only through
// higher levels: a ward holds no district, and an office holds nothing.
func (u *Units) walk(parent string, level Level, want int, day int64, out *[]int32) {
	for _, i := range u.children[parent] {
		r := &u.rows[i]
		if r.from > day || day >= r.to {
			continue
		}
		if r.Level == level {
			*out = append(*out, i)
		} else if r.Level.rank() < want {
			u.walk(r.Code, level, want, day, out)
		}
	}
}

// Successors returns the new communes an old ward maps to after the 2025
// reform, from the mapping table, in its order; nil if it has no row.
func (u *Units) Successors(oldWard string) []Successor {
	return slices.Clone(u.successors[oldWard])
}

// at is the row of code open on day: a map lookup and a scan of the code's
// few periods (4 at most in the embedded data).
func (u *Units) at(code string, day int64) *unitRow {
	sp, ok := u.byCode[code]
	if !ok {
		return nil
	}
	for i := sp.lo; i < sp.hi; i++ {
		r := &u.rows[i]
		if day < r.from {
			break
		}
		if day < r.to {
			return r
		}
	}
	return nil
}

// unitsDayOf is the local date of t as a day number.
func unitsDayOf(t time.Time) int64 {
	s := t.Unix()
	if s > math.MaxInt64-unitsZoneOffset {
		return math.MaxInt64 / unitsSecondsADay
	}
	s += unitsZoneOffset
	d := s / unitsSecondsADay
	if s%unitsSecondsADay < 0 {
		d--
	}
	return d
}

// unitsCivilDay is the day number of a proleptic Gregorian date (Howard
// Hinnant's days_from_civil), without building a time.Time.
func unitsCivilDay(y int, m time.Month, d int) int64 {
	yy := int64(y)
	if m <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 && yy%400 != 0 {
		era--
	}
	yoe := yy - era*400
	mp := (int64(m) + 9) % 12
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// unitsParseDay parses a strict YYYY-MM-DD in the years 1900–2199: wider
// would accept typos such as 0202 or 2205.
func unitsParseDay(s string) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, m, d := num(s[:4]), num(s[5:7]), num(s[8:])
	if y < 1900 || y > 2199 || m < 1 || m > 12 || d < 1 || d > unitsDaysIn(y, time.Month(m)) {
		return 0, false
	}
	return unitsCivilDay(y, time.Month(m), d), true
}

func unitsDaysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

func unitsFormatDay(day int64) string {
	return time.Unix(day*unitsSecondsADay, 0).UTC().Format(time.DateOnly)
}

// unitsDate names a day in messages.
func unitsDate(day int64) string {
	if day == unitsSinceEver {
		return "the first day (valid_from empty)"
	}
	return unitsFormatDay(day)
}

// unitsSource is what errors say about a file: its name and, for each
// column of unitsHeader, its column in the file (-1 if absent).
type unitsSource struct {
	name string
	pos  [unitsCols]int
}

// unitsFile is one source of rows.
type unitsFile struct {
	name    string
	r       io.Reader
	history bool // the GSO history: an empty valid_to ends at the reform
	reform  bool // units-vn-2025.csv: no validity columns, from the reform on
}

// unitsBuilder accumulates layers of rows. Each code's rows are a linked
// list through unitRow.next, newest first, so that indexing 16,000 rows
// allocates one map and no slice per code.
type unitsBuilder struct {
	rows    []unitRow
	codes   map[string]unitsCode
	files   []unitsSource // by unitRow.src
	errs    []error
	scratch []int32
}

// unitsCode is a code's entry in the builder.
type unitsCode struct {
	head  int32 // newest row, -1 for none
	first int32 // oldest row: where build emits the code
	check int32 // the last layer that checked the code's overlaps, +1
}

// fail records one error; it reports whether more are still wanted.
func (b *unitsBuilder) fail(err error) bool {
	if len(b.errs) < unitsMaxErrors {
		b.errs = append(b.errs, err)
	}
	return len(b.errs) < unitsMaxErrors
}

func (b *unitsBuilder) err() error {
	switch len(b.errs) {
	case 0:
		return nil
	case 1:
		return b.errs[0]
	case unitsMaxErrors:
		// Reading stopped there, so there may be more.
		return errors.Join(append(b.errs, Errorf(EINVALID, "stopped after %d errors", unitsMaxErrors))...)
	}
	return errors.Join(b.errs...)
}

// cellError is an EINVALID error about one cell of a row: col is a column
// of unitsHeader, which also names the error's field.
func (b *unitsBuilder) cellError(r *unitRow, col int, value, format string, args ...any) *Error {
	f := &b.files[r.src]
	where := fmt.Sprintf("%s line %d, column %d (%s)", f.name, r.line, f.pos[col]+1, unitsHeader[col])
	if f.pos[col] < 0 {
		where = fmt.Sprintf("%s line %d (%s)", f.name, r.line, unitsHeader[col])
	}
	return &Error{Code: EINVALID, Field: unitsHeader[col], Message: fmt.Sprintf("%s %q: %s", where, value, fmt.Sprintf(format, args...))}
}

// live lists the rows of code that are not dead into b.scratch, sorted by
// valid_from (and age, for equal ones).
func (b *unitsBuilder) live(code string) []int32 {
	list := b.scratch[:0]
	for j := b.head(code); j >= 0; j = b.rows[j].next {
		if !b.rows[j].dead {
			list = append(list, j)
		}
	}
	if len(list) > 1 {
		slices.SortFunc(list, func(x, y int32) int {
			return cmp.Or(cmp.Compare(b.rows[x].from, b.rows[y].from), cmp.Compare(x, y))
		})
	}
	b.scratch = list
	return list
}

func (b *unitsBuilder) head(code string) int32 {
	if c, ok := b.codes[code]; ok {
		return c.head
	}
	return -1
}

// layer reads files as one layer: each row closes the row of its code from
// an earlier layer that is open on its valid_from (a row whose period becomes
// empty is replaced). Then no two rows of a code may overlap, and every row's
// parent must exist on its valid_from.
func (b *unitsBuilder) layer(files ...unitsFile) error {
	first := int32(len(b.rows))
	for _, f := range files {
		b.read(f)
	}
	if err := b.err(); err != nil {
		return err
	}
	// Close the earlier rows; note the codes that lost days.
	touched := map[string]bool{}
	for i := first; i < int32(len(b.rows)); i++ {
		r := &b.rows[i]
		c, ok := b.codes[r.Code]
		if !ok {
			c = unitsCode{head: -1, first: i}
		}
		for j := c.head; j >= 0; j = b.rows[j].next {
			e := &b.rows[j]
			if j >= first || e.dead || r.from < e.from || r.from >= e.to {
				continue
			}
			e.to, e.ValidTo = r.from, r.ValidFrom
			e.dead = e.to <= e.from
			touched[r.Code] = true
		}
		r.next, c.head = c.head, i
		b.codes[r.Code] = c
	}
	b.checkOverlaps(first)
	for i := first; i < int32(len(b.rows)); i++ {
		if !b.checkParent(&b.rows[i], "") {
			break
		}
	}
	// A closed row may leave an earlier child without its parent.
	if len(touched) > 0 {
		why := fmt.Sprintf(", once the rows of %s close it", b.files[len(b.files)-1].name)
		for i := range first {
			if r := &b.rows[i]; !r.dead && touched[r.Parent] && !b.checkParent(r, why) {
				break
			}
		}
	}
	return b.err()
}

// read appends the rows of one file, recording the errors of bad ones.
func (b *unitsBuilder) read(f unitsFile) {
	cr := csv.NewReader(skipBOM(f.r))
	cr.Comment = '#'
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		b.fail(Errorf(EINVALID, "%s: empty, want the header %s", f.name, strings.Join(unitsHeader[:], ",")))
		return
	}
	if err != nil {
		b.fail(unitsCSVError(f.name, err))
		return
	}
	want := unitsHeader[:]
	if f.reform {
		want = unitsHeader[:unitsColFrom]
	}
	// pos[c] is the file column of unitsHeader[c]; any order is accepted.
	src := unitsSource{name: f.name}
	pos := &src.pos
	for c := range pos {
		pos[c] = -1
	}
	line, _ := cr.FieldPos(0)
	for i, h := range header {
		h = strings.TrimSpace(h)
		c := slices.Index(want, h)
		if c < 0 || pos[c] >= 0 {
			what := "unknown column"
			if c >= 0 {
				what = "repeated column"
			}
			b.fail(Errorf(EINVALID, "%s line %d, column %d %q: %s, want the header %s", f.name, line, i+1, h, what, strings.Join(want, ",")))
			return
		}
		pos[c] = i
	}
	for c, p := range pos[:len(want)] {
		if p < 0 {
			b.fail(Errorf(EINVALID, "%s line %d: no column %s, want the header %s", f.name, line, want[c], strings.Join(want, ",")))
			return
		}
	}
	b.files = append(b.files, src)
	id := int32(len(b.files) - 1)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			// A wrong field count leaves the reader in step; other
			// syntax errors may not.
			if !b.fail(unitsCSVError(f.name, err)) || !errors.Is(err, csv.ErrFieldCount) {
				return
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		var cell [unitsCols]string
		for c, p := range pos[:len(want)] {
			cell[c] = strings.TrimSpace(rec[p])
		}
		r := unitRow{src: id, line: int32(line)}
		if !b.parseRow(f, &r, &cell) {
			return
		}
		b.rows = append(b.rows, r)
	}
}

// parseRow fills r from a row's cells (in unitsHeader order), checking each
// on its own. It returns false when no more errors are wanted.
func (b *unitsBuilder) parseRow(f unitsFile, r *unitRow, cell *[unitsCols]string) bool {
	ok := true
	bad := func(c int, format string, args ...any) {
		ok = b.fail(b.cellError(r, c, cell[c], format, args...)) && ok
	}
	r.Code, r.Name, r.Kind, r.Parent = cell[unitsColCode], cell[unitsColName], cell[unitsColKind], cell[unitsColParent]
	level, err := ParseLevel(cell[unitsColLevel])
	if err != nil {
		bad(unitsColLevel, "must be province, district, ward or office")
	}
	r.Level = level
	if msg := unitsCheckCode(r.Code, level); msg != "" {
		bad(unitsColCode, "%s", msg)
	}
	if msg := unitsCheckText(r.Name, unitsMaxName); msg != "" || r.Name == "" {
		if msg == "" {
			msg = "required"
		}
		bad(unitsColName, "%s", msg)
	}
	if msg := unitsCheckText(r.Kind, unitsMaxKind); msg != "" {
		bad(unitsColKind, "%s", msg)
	}
	switch {
	case level == LevelProvince && r.Parent != "":
		bad(unitsColParent, "a province has no parent")
	case level != LevelProvince && level != "" && r.Parent == "":
		bad(unitsColParent, "required for %s", unitsA(level))
	case r.Parent == r.Code && r.Code != "":
		bad(unitsColParent, "a unit cannot be its own parent")
	}
	r.from, r.to = unitsSinceEver, unitsForever
	switch {
	case f.reform:
		r.from, r.ValidFrom = unitsReform, unitsReformDate
	default:
		if s := cell[unitsColFrom]; s != "" {
			if d, ok := unitsParseDay(s); ok {
				r.from, r.ValidFrom = d, s
			} else {
				bad(unitsColFrom, "want a date YYYY-MM-DD (years 1900–2199) or empty")
			}
		}
		if s := cell[unitsColTo]; s != "" {
			if d, ok := unitsParseDay(s); !ok {
				bad(unitsColTo, "want a date YYYY-MM-DD (years 1900–2199) or empty")
			} else if d <= r.from {
				bad(unitsColTo, "must be after valid_from %s", cell[unitsColFrom])
			} else {
				r.to, r.ValidTo = d, s
			}
		} else if f.history {
			r.to, r.ValidTo = unitsReform, unitsReformDate
		}
	}
	return ok
}

// unitsCheckCode checks a code's shape against its level: GSO levels have
// GSO codes (2, 3 or 5 digits); an office code must not look like one, so it
// has a non-digit or more than 5 characters.
func unitsCheckCode(code string, level Level) string {
	digits := code != ""
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '.', c == '_', c == '-':
			digits = false
		default:
			return "a code has only letters, digits, '.', '_' and '-'"
		}
	}
	want := 0
	switch level {
	case LevelProvince:
		want = 2
	case LevelDistrict:
		want = 3
	case LevelWard:
		want = 5
	}
	switch {
	case code == "":
		return "required"
	case level == LevelOffice && len(code) > unitsMaxOffice:
		return fmt.Sprintf("an office code has at most %d characters", unitsMaxOffice)
	case level == LevelOffice && digits && len(code) <= 5:
		return "an office code must not look like a GSO code: give it a letter or more than 5 characters"
	case want > 0 && (!digits || len(code) != want):
		return fmt.Sprintf("a %s code is %d digits (GSO); an operator's own unit is an office", level, want)
	}
	return ""
}

// unitsCheckText checks a free-text cell.
func unitsCheckText(s string, max int) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Sprintf("longer than %d characters", max)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "has a control character"
	}
	return ""
}

// checkOverlaps reports rows of one code whose periods overlap, naming the
// newer row of each pair (the older one was accepted before).
func (b *unitsBuilder) checkOverlaps(first int32) {
	layer := first + 1 // unique per layer, and never 0
	for i := first; i < int32(len(b.rows)); i++ {
		code := b.rows[i].Code
		c := b.codes[code]
		if c.check == layer {
			continue
		}
		c.check = layer
		b.codes[code] = c
		live := b.live(code)
		for k := 1; k < len(live); k++ {
			p, q := &b.rows[live[k-1]], &b.rows[live[k]]
			if p.to <= q.from {
				continue
			}
			bad, other, col, value := q, p, unitsColFrom, q.ValidFrom
			if live[k-1] > live[k] {
				bad, other, col, value = p, q, unitsColTo, p.ValidTo
			}
			if !b.fail(b.cellError(bad, col, value, "overlaps %s line %d (%s, %s to %s); one must end before the other starts",
				b.files[other.src].name, other.line, other.Name, unitsOr(other.ValidFrom, "since ever"), unitsOr(other.ValidTo, "open"))) {
				return
			}
		}
	}
}

// unitsA is a level with its article, for messages.
func unitsA(l Level) string {
	if l == LevelOffice {
		return "an office"
	}
	return "a " + string(l)
}

func unitsOr(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// checkParent checks that r's parent exists on every day of r's period, so
// that a chain of parents always reaches a province, at a level above r's: a
// province above a district, a district or a province (from the reform) above
// a ward, and any of the three above an office.
func (b *unitsBuilder) checkParent(r *unitRow, why string) bool {
	if r.Parent == "" {
		return true
	}
	day := r.from // the first day not yet seen covered
	for _, j := range b.live(r.Parent) {
		p := &b.rows[j]
		if p.to <= day {
			continue
		}
		if p.from > day {
			break
		}
		if pr := p.Level.rank(); pr >= r.Level.rank() || p.Level == LevelOffice || (r.Level == LevelDistrict && p.Level != LevelProvince) {
			return b.fail(b.cellError(r, unitsColParent, r.Parent, "is %s (%s) on %s; %s cannot be under it", unitsA(p.Level), p.Name, unitsDate(day), unitsA(r.Level)))
		}
		if day = p.to; day >= r.to {
			return true
		}
	}
	hint := ""
	if day > r.from && why == "" {
		hint = "; end this row by then (valid_to) and give the unit its new parent in a row from that day"
	}
	return b.fail(b.cellError(r, unitsColParent, r.Parent, "no unit with this code on %s%s%s", unitsDate(day), why, hint))
}

// build lays the live rows out code by code, each code's sorted by
// valid_from, and indexes them.
func (b *unitsBuilder) build() *Units {
	rows := make([]unitRow, 0, len(b.rows))
	u := &Units{byCode: make(map[string]unitSpan, len(b.codes))}
	for i := range b.rows {
		code := b.rows[i].Code
		if b.codes[code].first != int32(i) {
			continue
		}
		lo := int32(len(rows))
		for _, j := range b.live(code) {
			r := b.rows[j]
			// Keep the rows linked, newest first, for unitsBase.
			r.next = int32(len(rows)) - 1
			if r.next < lo {
				r.next = -1
			}
			rows = append(rows, r)
		}
		if hi := int32(len(rows)); hi > lo {
			u.byCode[code] = unitSpan{lo, hi}
		}
	}
	u.rows = rows
	// Count first so that each parent's list is one allocation.
	n := make(map[string]int, 1024)
	for i := range rows {
		n[rows[i].Parent]++
	}
	u.children = make(map[string][]int32, len(n))
	backing := make([]int32, len(rows))
	for i := range rows {
		p := rows[i].Parent
		list, ok := u.children[p]
		if !ok {
			list, backing = backing[:0:n[p]], backing[n[p]:]
		}
		u.children[p] = append(list, int32(i))
	}
	for _, list := range u.children {
		slices.SortFunc(list, func(x, y int32) int { return cmp.Or(strings.Compare(rows[x].Code, rows[y].Code), cmp.Compare(x, y)) })
	}
	return u
}

// unitsReadMapping reads the old ward → new commune table.
func unitsReadMapping(data []byte) (map[string][]Successor, error) {
	const name = "data/units-vn-2025-mapping.csv"
	cr := csv.NewReader(bytes.NewReader(data))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 3
	all := make([]Successor, 0, 10600)
	olds := make([]string, 0, 10600)
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, unitsCSVError(name, err)
		}
		if first {
			continue // the header
		}
		olds = append(olds, rec[0])
		all = append(all, Successor{Code: rec[1], Note: rec[2]})
	}
	out := make(map[string][]Successor, 10100)
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && olds[j] == olds[i] {
			j++
		}
		if prev, ok := out[olds[i]]; ok { // the table is grouped, but need not be
			out[olds[i]] = append(prev[:len(prev):len(prev)], all[i:j]...)
		} else {
			out[olds[i]] = all[i:j:j]
		}
		i = j
	}
	return out, nil
}

func unitsCSVError(name string, err error) error {
	if pe, ok := errors.AsType[*csv.ParseError](err); ok {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return Errorf(EINVALID, "%s line %d: a row has as many fields as the header", name, pe.Line)
		}
		return Errorf(EINVALID, "%s line %d, column %d: %v", name, pe.Line, pe.Column, pe.Err)
	}
	return Errorf(EINVALID, "%s: %v", name, err)
}
