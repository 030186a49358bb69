package projections

import (
	"time"

	"github.com/hoso-ledger/hoso"
)

// resolver answers registry questions as the registry stood on one local
// day: a report's last day.
type resolver struct {
	units *hoso.Units
	day   int64
	t     time.Time
	cache map[string]resolved
}

type resolved struct {
	u  hoso.Unit
	ok bool
}

func newResolver(units *hoso.Units, day int64) *resolver {
	return &resolver{units: units, day: day, t: noonOf(day), cache: map[string]resolved{}}
}

// current is the unit with code on the day.
func (r *resolver) current(code string) (hoso.Unit, bool) {
	return r.units.At(code, r.t)
}

// version is the unit with code on the day or, if it no longer exists
// then, its last version before the day.
func (r *resolver) version(code string) (hoso.Unit, bool) {
	if v, ok := r.cache[code]; ok {
		return v.u, v.ok
	}
	u, ok := r.current(code)
	if !ok {
		u, ok = r.lastBefore(code)
	}
	r.cache[code] = resolved{u, ok}
	return u, ok
}

// lastBefore is the last period of code that began before the day; the
// code does not exist on the day, so that period also ended before it.
func (r *resolver) lastBefore(code string) (hoso.Unit, bool) {
	date := formatDay(r.day)
	h := r.units.History(code)
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].ValidFrom == "" || h[i].ValidFrom < date {
			return h[i], true
		}
	}
	return hoso.Unit{}, false
}

// ancestor is the code of the unit at level that contains code (itself
// when it is of that level), following parents as they stood on the day.
func (r *resolver) ancestor(code string, level hoso.Level) (string, bool) {
	u, ok := r.version(code)
	for depth := 0; ok && depth < 16; depth++ {
		if u.Level == level {
			return u.Code, true
		}
		if u.Parent == "" {
			return "", false
		}
		u, ok = r.version(u.Parent)
	}
	return "", false
}

// descendants are the units of level inside code's subtree ("" is the
// whole country), in the registry's order.
func (r *resolver) descendants(code string, level hoso.Level) []hoso.Unit {
	return r.units.Descendants(code, level, r.t)
}

// levels are the report levels, from the top; office is an operator's own
// desks.
var levels = []hoso.Level{hoso.LevelProvince, hoso.LevelDistrict, hoso.LevelWard, hoso.LevelOffice}

func rank(l hoso.Level) int {
	for i, v := range levels {
		if v == l {
			return i
		}
	}
	return -1
}

// levelWithin reports whether rows of level l can lie inside a unit of
// level scope.
func levelWithin(l, scope hoso.Level) bool {
	rl, rs := rank(l), rank(scope)
	return rl >= 0 && (rs < 0 || rl >= rs)
}

// within reports whether code's unit lies in root's subtree (or is root),
// following parents as they stood on the day.
func (r *resolver) within(code, root string) bool {
	u, ok := r.version(code)
	for depth := 0; ok && depth < 16; depth++ {
		if u.Code == root {
			return true
		}
		if u.Parent == "" {
			return false
		}
		u, ok = r.version(u.Parent)
	}
	return false
}
