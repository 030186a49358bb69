package projections

import (
	"strings"
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

// placement is where the dossiers counted under one unit code stand on
// the resolver's day.
type placement struct {
	// above[rank(l)] is the unit of level l in the chain of parents of
	// the code's unit on the day (the unit itself at its own level), ""
	// where the chain has none.
	above [4]string
	// auth is the rank of the dossiers' authority level: the level of
	// their unit, or of the unit an office is attached to; -1 when the
	// registry cannot place the code.
	auth int8
	// unassigned: the code's unit does not exist on the day and nothing
	// says which unit took its dossiers over, so they stand with the
	// nearest unit up its last parents that does.
	unassigned bool
}

// authUnit is the code of the dossiers' authority unit.
func (p *placement) authUnit() string { return p.above[p.auth] }

// place places code on the day: its unit then, or the unit that holds
// its dossiers then (effective).
func (r *resolver) place(code string) placement {
	p := placement{auth: -1}
	eff, assigned, ok := r.effective(code)
	if !ok {
		return p
	}
	u, ok := r.current(eff)
	// Levels go up along a chain (the registry checks it): 4 steps at most.
	for depth := 0; ok && depth < 8; depth++ {
		if k := rank(u.Level); k >= 0 && p.above[k] == "" {
			p.above[k] = u.Code
		}
		if u.Parent == "" {
			break
		}
		u, ok = r.current(u.Parent)
	}
	for k := rank(hoso.LevelWard); k >= 0; k-- {
		if p.above[k] != "" {
			p.auth = int8(k)
			break
		}
	}
	p.unassigned = !assigned
	return p
}

// effective is the code of the unit that holds code's dossiers on the day,
// and whether it is known to hold them: code itself when it exists then;
// from the 2025 reform on, the commune the mapping sends the old ward to,
// when it names one (successor); otherwise, not known to (assigned false),
// the nearest unit up its last parents that exists then, or the province
// that took in every successor of the unit's wards.
func (r *resolver) effective(code string) (eff string, assigned, ok bool) {
	if _, ok := r.current(code); ok {
		return code, true, true
	}
	if r.day >= reformDay {
		if s := r.successor(code); s != "" {
			if _, ok := r.current(s); ok {
				return s, true, true
			}
		}
	}
	if p, ok := r.lastParent(code); ok {
		return p, false, true
	}
	if p := r.successorProvince(code); p != "" {
		return p, false, true
	}
	return "", false, false
}

// reformDay is the day of hoso.ReformDate.
var reformDay, _ = parseDate("reform", hoso.ReformDate)

// successor is the commune the 2025 mapping sends old ward code's dossiers
// to: its one commune, or, of several ("Nhập một phần"), the one that took
// its whole population ("… toàn bộ dân số"); "" when the mapping does not
// say.
func (r *resolver) successor(code string) string {
	succ := r.units.Successors(code)
	one, whole := "", ""
	for i, s := range succ {
		if i == 0 {
			one = s.Code
		} else if s.Code != one {
			one = "-"
		}
		if strings.Contains(s.Note, "toàn bộ dân số") {
			if whole != "" && whole != s.Code {
				return ""
			}
			whole = s.Code
		}
	}
	if one != "-" {
		return one
	}
	return whole
}

// successorProvince is, from the reform on, the one province on the day
// that holds every commune the wards of code's last version (code itself
// for a ward) went into, wholly or in part; "" when none or several.
func (r *resolver) successorProvince(code string) string {
	if r.day < reformDay {
		return ""
	}
	v, ok := r.lastBefore(code)
	if !ok {
		return ""
	}
	wards := []string{code}
	if v.Level != hoso.LevelWard {
		last, err := parseDate("valid_to", v.ValidTo)
		if err != nil {
			return ""
		}
		wards = wards[:0]
		for _, w := range r.units.Descendants(code, hoso.LevelWard, noonOf(last-1)) {
			wards = append(wards, w.Code)
		}
	}
	province := ""
	for _, w := range wards {
		for _, s := range r.units.Successors(w) {
			p := r.units.Province(s.Code, r.t)
			if p == "" {
				continue
			}
			if province != "" && p != province {
				return ""
			}
			province = p
		}
	}
	return province
}

// lastParent is the nearest unit up the last parents of code (each taken
// as its last version before the day) that exists on the day.
func (r *resolver) lastParent(code string) (string, bool) {
	c := code
	for depth := 0; depth < 8; depth++ {
		v, ok := r.lastBefore(c)
		if !ok || v.Parent == "" {
			break
		}
		if _, ok := r.current(v.Parent); ok {
			return v.Parent, true
		}
		c = v.Parent
	}
	return "", false
}

// descendants are the units of level inside code's subtree ("" is the
// whole country), in the registry's order.
func (r *resolver) descendants(code string, level hoso.Level) []hoso.Unit {
	return r.units.Descendants(code, level, r.t)
}

// levels are the report levels, from the top; office is an operator's own
// desks. The first three are also the authority levels.
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

// wardsUnderProvinces are the wards directly under a province (from the
// 2025 reform, every commune) inside code's subtree ("" is the whole
// country), on the day.
func (r *resolver) wardsUnderProvinces(code string) []hoso.Unit {
	provinces := []string{code}
	if code == "" {
		provinces = provinces[:0]
		for _, p := range r.units.Children("", r.t) {
			provinces = append(provinces, p.Code)
		}
	} else if u, ok := r.current(code); !ok || u.Level != hoso.LevelProvince {
		return nil
	}
	var out []hoso.Unit
	for _, p := range provinces {
		for _, c := range r.units.Children(p, r.t) {
			if c.Level == hoso.LevelWard {
				out = append(out, c)
			}
		}
	}
	return out
}

// hasLevel reports whether code's subtree ("" is the whole country) holds
// a unit of level on the day, going down only through higher levels.
func (r *resolver) hasLevel(code string, level hoso.Level) bool {
	want := rank(level)
	for _, c := range r.units.Children(code, r.t) {
		switch k := rank(c.Level); {
		case c.Level == level:
			return true
		case k < want && r.hasLevel(c.Code, level):
			return true
		}
	}
	return false
}
