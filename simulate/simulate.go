package simulate

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Config chooses what to simulate.
type Config struct {
	// Scope is the unit whose subtree receives dossiers (e.g. "01", Hà
	// Nội): its wards, its districts and itself, as they stand on each day.
	Scope string
	// From and To are the period's first and last local dates.
	From, To time.Time
	// Dossiers is how many dossiers are received over the period.
	Dossiers int
	// Seed makes a run reproducible: the same Config gives the same events.
	Seed uint64
	// LateShare is the share of resolutions that come after the due date.
	LateShare float64
	// Prefix starts every dossier code; by default "S<seed>.", so runs
	// with different seeds never collide.
	Prefix string
	// Now is the clock: no event is dated after it (histories are cut
	// there, leaving those dossiers open). Zero means no cap.
	Now time.Time
	// Level is the level of the summary's rows (default: ward).
	Level hoso.Level
}

// Defaults of a Config.
const (
	DefaultLateShare = 0.06
	DefaultDossiers  = 10_000
)

// procedure is an administrative procedure with its processing time. The
// codes follow the national procedure database's pattern; the days are the
// typical statutory ones.
type procedure struct {
	code   string
	days   float64
	weight int
}

var procedures = map[hoso.Level][]procedure{
	hoso.LevelWard: {
		{"2.000908", 0.5, 30}, // chứng thực bản sao từ bản chính
		{"1.001193", 1, 20},   // đăng ký khai sinh
		{"1.000656", 1, 5},    // đăng ký khai tử
		{"1.004227", 3, 12},   // xác nhận tình trạng hôn nhân
		{"1.001022", 5, 6},    // đăng ký kết hôn
	},
	hoso.LevelDistrict: {
		{"1.001612", 3, 20},  // đăng ký thành lập hộ kinh doanh
		{"2.000889", 1, 15},  // cấp bản sao trích lục hộ tịch
		{"1.004221", 10, 15}, // đăng ký biến động đất đai
		{"1.009994", 15, 8},  // cấp giấy phép xây dựng nhà ở riêng lẻ
	},
	hoso.LevelProvince: {
		{"1.005070", 10, 20}, // cấp phiếu lý lịch tư pháp
		{"1.002835", 5, 15},  // đổi giấy phép lái xe
		{"1.001776", 3, 10},  // cấp giấy phép kinh doanh
	},
}

// channelMix is online, direct, postal per level of the receiving unit.
var channelMix = map[hoso.Level][3]float64{
	hoso.LevelWard:     {0.45, 0.52, 0.03},
	hoso.LevelDistrict: {0.60, 0.35, 0.05},
	hoso.LevelProvince: {0.70, 0.20, 0.10},
}

// Shape of arrivals: busier Mondays, quieter Fridays; a year-end peak; a
// dip after Tết and a rush before it.
var (
	weekdayFactor = [7]float64{0, 1.25, 1.05, 1.0, 0.95, 0.85, 0}
	monthFactor   = [13]float64{0, 1.05, 0.85, 1.0, 1.0, 0.95, 1.0, 0.95, 0.95, 1.0, 1.05, 1.1, 1.3}
	// The desk's busy hours, 08:00 to 16:00: mornings are busier.
	hourWeights = []struct {
		hour   int
		weight float64
	}{{8, 8}, {9, 12}, {10, 12}, {11, 9}, {13, 6}, {14, 9}, {15, 8}, {16, 5}}
)

// Generator produces a period's events in ledger order.
type Generator struct {
	cfg   Config
	units *hoso.Units
	cal   *hoso.Calendar
	rng   *rand.Rand

	province   string
	start, end time.Time // first instant of From, last instant of To (capped at Now)
	report     time.Time // when the summary's hierarchy is read: noon of To

	queue  eventQueue
	order  uint64
	open   map[string]*hoso.Dossier // dossiers with events still to come, or open
	left   map[string]int           // events still queued, per dossier
	counts map[string]*Counts       // by row unit
	own    []hoso.Unit              // units above the level with a row
	sum    Summary
}

// New checks cfg against the registry and returns a generator.
func New(units *hoso.Units, cal *hoso.Calendar, cfg Config) (*Generator, error) {
	if cfg.Dossiers < 0 {
		return nil, hoso.FieldErrorf("dossiers", "must be 0 or more, got %d", cfg.Dossiers)
	}
	if cfg.LateShare < 0 || cfg.LateShare > 1 {
		return nil, hoso.FieldErrorf("late", "must be a share between 0 and 1, got %v", cfg.LateShare)
	}
	if cfg.Level == "" {
		cfg.Level = hoso.LevelWard
	}
	if _, err := hoso.ParseLevel(string(cfg.Level)); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("S%d.", cfg.Seed)
	}
	g := &Generator{
		cfg: cfg, units: units, cal: cal,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x686f736f)),
		open:   map[string]*hoso.Dossier{},
		left:   map[string]int{},
		counts: map[string]*Counts{},
	}
	g.start = localDay(cfg.From)
	g.end = localDay(cfg.To).Add(24*time.Hour - time.Minute)
	if !cfg.Now.IsZero() && cfg.Now.Before(g.end) {
		g.end = cfg.Now.Truncate(time.Minute)
	}
	if g.end.Before(g.start) {
		return nil, hoso.FieldErrorf("to", "the period %s … %s ends before it starts (or starts after now)",
			cfg.From.Format(time.DateOnly), cfg.To.Format(time.DateOnly))
	}
	g.report = localDay(cfg.To).Add(12 * time.Hour)
	u, ok := units.At(cfg.Scope, g.start)
	if !ok {
		return nil, hoso.FieldErrorf("unit", "unknown unit %q on %s", cfg.Scope, cfg.From.Format(time.DateOnly))
	}
	if u.Level == hoso.LevelOffice {
		return nil, hoso.FieldErrorf("unit", "%q is an office; simulate a province, district or ward", cfg.Scope)
	}
	g.province = units.Province(cfg.Scope, g.start)
	g.sum = Summary{Unit: cfg.Scope, Level: cfg.Level, From: cfg.From.Format(time.DateOnly), To: cfg.To.Format(time.DateOnly),
		Seed: cfg.Seed, LateShare: cfg.LateShare}
	for _, r := range units.Descendants(cfg.Scope, cfg.Level, g.report) {
		g.counts[r.Code] = &Counts{}
		g.sum.Rows = append(g.sum.Rows, SummaryRow{Unit: r.Code, Name: r.Name})
	}
	return g, nil
}

// localDay is the first instant of t's civil date in Vietnam.
func localDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, hoso.VietnamZone)
}

// Run generates the whole period, calling emit for every event in ledger
// order (by time; each dossier's events in order), and returns the summary.
// The events carry their id and, for received, days (not due), as a desk
// system sends them.
func (g *Generator) Run(ctx context.Context, emit func(*hoso.Event) error) (*Summary, error) {
	perDay := g.arrivals()
	seq := 0
	for day := g.start; !day.After(g.end); day = day.AddDate(0, 0, 1) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		units := g.receivingUnits(day)
		for range perDay[day.Format(time.DateOnly)] {
			seq++
			if len(units) == 0 {
				continue
			}
			g.dossier(day, seq, units)
		}
		if err := g.flush(day.AddDate(0, 0, 1), emit); err != nil {
			return nil, err
		}
	}
	if err := g.flush(g.end.Add(time.Minute), emit); err != nil {
		return nil, err
	}
	g.queue = nil
	for _, d := range g.open {
		if !d.State.Open() {
			continue // resolved, its return cut at the end
		}
		if c := g.row(d.Owner); c != nil {
			c.Pending++
		}
	}
	slices.SortFunc(g.own, func(a, b hoso.Unit) int {
		return cmp.Or(cmp.Compare(levelRank[a.Level], levelRank[b.Level]), strings.Compare(a.Code, b.Code))
	})
	var own []SummaryRow
	for _, u := range g.own {
		own = append(own, SummaryRow{Unit: u.Code, Name: u.Name, Own: true})
	}
	g.sum.Rows = append(own, g.sum.Rows...)
	for i := range g.sum.Rows {
		g.sum.Rows[i].Counts = *g.counts[g.sum.Rows[i].Unit]
		g.sum.Total.add(&g.sum.Rows[i].Counts)
	}
	return &g.sum, nil
}

// flush emits every queued event dated before until, and at most g.end.
func (g *Generator) flush(until time.Time, emit func(*hoso.Event) error) error {
	for len(g.queue) > 0 && g.queue[0].e.At.Before(until) {
		q := heap.Pop(&g.queue).(queued)
		if q.e.At.After(g.end) {
			continue // cut at the period's end (or now): the dossier stays open
		}
		if err := g.account(q.e); err != nil {
			return err
		}
		if err := emit(q.e); err != nil {
			return err
		}
	}
	return nil
}

// account folds e into its dossier, checking the generated history against
// the state machine, and counts it.
func (g *Generator) account(e *hoso.Event) error {
	d := g.open[e.Dossier]
	if d == nil {
		d = &hoso.Dossier{}
		g.open[e.Dossier] = d
	}
	applied := *e
	if applied.Type == hoso.EventReceived {
		due, err := g.cal.Due(g.units.Province(e.Unit, e.At), e.At, e.Days)
		if err != nil {
			return err
		}
		applied.Due = due
	}
	owner := d.Owner
	if err := d.Apply(&applied); err != nil {
		return fmt.Errorf("simulate: generated an invalid history: %w", err)
	}
	g.sum.Events++
	switch e.Type {
	case hoso.EventReceived:
		g.sum.Dossiers++
		if c := g.row(e.Unit); c != nil {
			c.Received++
			switch e.Channel {
			case hoso.ChannelOnline:
				c.ReceivedOnline++
			case hoso.ChannelDirect:
				c.ReceivedDirect++
			case hoso.ChannelPostal:
				c.ReceivedPostal++
			}
		}
	case hoso.EventResolved:
		if c := g.row(owner); c != nil {
			c.Resolved++
			switch d.Result {
			case hoso.ClassEarly:
				c.ResolvedEarly++
			case hoso.ClassOnTime:
				c.ResolvedOnTime++
			case hoso.ClassLate:
				c.ResolvedLate++
			}
		}
	case hoso.EventWithdrawn:
		if c := g.row(owner); c != nil {
			c.Withdrawn++
		}
	}
	if g.left[e.Dossier]--; g.left[e.Dossier] == 0 {
		delete(g.left, e.Dossier)
		if !d.State.Open() {
			delete(g.open, e.Dossier) // closed for good: nothing more to count
		}
	}
	return nil
}

// levelRank orders the levels from the top.
var levelRank = map[hoso.Level]int{hoso.LevelProvince: 0, hoso.LevelDistrict: 1, hoso.LevelWard: 2, hoso.LevelOffice: 3}

// row is the counts of the summary row that unit code falls in, as the
// hierarchy stands on the period's last day: its ancestor of the level, or
// its own row when it is above the level; nil when outside every row.
func (g *Generator) row(code string) *Counts {
	if c, ok := g.counts[code]; ok {
		return c
	}
	for _, a := range g.units.Ancestors(code, g.report) {
		if a.Level == g.cfg.Level {
			return g.counts[a.Code]
		}
	}
	if u, ok := g.units.At(code, g.report); ok && levelRank[u.Level] < levelRank[g.cfg.Level] {
		g.own = append(g.own, u)
		g.counts[code] = &Counts{}
		return g.counts[code]
	}
	return nil
}

// arrivals spreads cfg.Dossiers over the days of the period by weight,
// exactly (largest remainders), keyed by local date.
func (g *Generator) arrivals() map[string]int {
	type dayWeight struct {
		key string
		w   float64
	}
	tet := g.tet()
	var days []dayWeight
	total := 0.0
	for day := g.start; !day.After(g.end); day = day.AddDate(0, 0, 1) {
		w := 0.04 // weekends and holidays: online submissions only
		if g.cal.IsWorkingDay(g.province, day.Add(12*time.Hour)) {
			w = weekdayFactor[day.Weekday()]
			if w == 0 {
				w = 0.9 // a decreed working Saturday
			}
			w *= tet(day)
		}
		w *= monthFactor[day.Month()]
		days = append(days, dayWeight{day.Format(time.DateOnly), w})
		total += w
	}
	out := make(map[string]int, len(days))
	given := 0
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, len(days))
	for i, d := range days {
		exact := float64(g.cfg.Dossiers) * d.w / total
		n := int(math.Floor(exact))
		out[d.key] = n
		given += n
		rems[i] = rem{i, exact - float64(n)}
	}
	// Hand out the rest to the largest remainders, earliest day first on ties.
	for given < g.cfg.Dossiers && len(days) > 0 {
		best := 0
		for i := range rems {
			if rems[i].r > rems[best].r {
				best = i
			}
		}
		out[days[rems[best].i].key]++
		rems[best].r = -1
		given++
	}
	return out
}

// tet returns the Tết factor of a working day: a rush in the ten days
// before the Lunar New Year holidays and a dip in the week after.
func (g *Generator) tet() func(time.Time) float64 {
	var starts, ends []time.Time
	var prev time.Time
	for _, h := range g.cal.Holidays(g.province, g.start.AddDate(0, -2, 0), g.end.AddDate(0, 2, 0)) {
		if !strings.Contains(h.Name, "Lunar New Year") {
			continue
		}
		d, err := time.ParseInLocation(time.DateOnly, h.Date, hoso.VietnamZone)
		if err != nil {
			continue
		}
		if prev.IsZero() || d.Sub(prev) > 72*time.Hour {
			starts = append(starts, d)
			ends = append(ends, d)
		} else {
			ends[len(ends)-1] = d
		}
		prev = d
	}
	return func(day time.Time) float64 {
		for i := range starts {
			if day.Before(starts[i]) && starts[i].Sub(day) <= 10*24*time.Hour {
				return 1.3
			}
			if day.After(ends[i]) && day.Sub(ends[i]) <= 7*24*time.Hour {
				return 0.5
			}
		}
		return 1
	}
}

// receivingUnit is a unit that receives dossiers, with its level.
type receivingUnit struct {
	code  string
	level hoso.Level
}

// receivingUnits lists the units of the scope that exist on day, by level.
func (g *Generator) receivingUnits(day time.Time) map[hoso.Level][]receivingUnit {
	noon := day.Add(12 * time.Hour)
	out := map[hoso.Level][]receivingUnit{}
	for _, l := range []hoso.Level{hoso.LevelProvince, hoso.LevelDistrict, hoso.LevelWard} {
		for _, u := range g.units.Descendants(g.cfg.Scope, l, noon) {
			out[l] = append(out[l], receivingUnit{u.Code, l})
		}
	}
	return out
}

// levelShare is how dossiers split between ward, district and province desks.
var levelShare = []struct {
	level hoso.Level
	share float64
}{{hoso.LevelWard, 0.70}, {hoso.LevelDistrict, 0.25}, {hoso.LevelProvince, 0.05}}

func (g *Generator) pickUnit(units map[hoso.Level][]receivingUnit) receivingUnit {
	r := g.rng.Float64()
	for _, ls := range levelShare {
		if r -= ls.share; r < 0 && len(units[ls.level]) > 0 {
			return units[ls.level][g.rng.IntN(len(units[ls.level]))]
		}
	}
	for _, ls := range levelShare {
		if len(units[ls.level]) > 0 {
			return units[ls.level][g.rng.IntN(len(units[ls.level]))]
		}
	}
	return receivingUnit{}
}

func (g *Generator) pickProcedure(l hoso.Level) procedure {
	ps := procedures[l]
	total := 0
	for _, p := range ps {
		total += p.weight
	}
	n := g.rng.IntN(total)
	for _, p := range ps {
		if n -= p.weight; n < 0 {
			return p
		}
	}
	return ps[0]
}

func (g *Generator) pickChannel(l hoso.Level) hoso.Channel {
	mix := channelMix[l]
	switch r := g.rng.Float64(); {
	case r < mix[0]:
		return hoso.ChannelOnline
	case r < mix[0]+mix[1]:
		return hoso.ChannelDirect
	}
	return hoso.ChannelPostal
}

// arrivalTime is when on day a dossier arrives: desk hours, busier in the
// morning; online submissions also in the evening and on days off.
func (g *Generator) arrivalTime(day time.Time, ch hoso.Channel, working bool) time.Time {
	if ch == hoso.ChannelOnline && (!working || g.rng.Float64() < 0.2) {
		return day.Add(time.Duration(6*60+g.rng.IntN(17*60)) * time.Minute)
	}
	total := 0.0
	for _, h := range hourWeights {
		total += h.weight
	}
	r := g.rng.Float64() * total
	hour := hourWeights[len(hourWeights)-1].hour
	for _, h := range hourWeights {
		if r -= h.weight; r < 0 {
			hour = h.hour
			break
		}
	}
	return day.Add(time.Duration(hour*60+g.rng.IntN(60)) * time.Minute)
}

// dossier plans one dossier's whole life and queues its events.
func (g *Generator) dossier(day time.Time, seq int, units map[hoso.Level][]receivingUnit) {
	working := g.cal.IsWorkingDay(g.province, day.Add(12*time.Hour))
	u := g.pickUnit(units)
	ch := g.pickChannel(u.level)
	if !working {
		ch = hoso.ChannelOnline
	}
	proc := g.pickProcedure(u.level)
	t0 := g.arrivalTime(day, ch, working)
	code := fmt.Sprintf("%s%s-%s-%06d", g.cfg.Prefix, u.code, day.Format("060102"), seq)
	p := &plan{g: g, code: code, province: g.units.Province(u.code, t0), owner: u.code, t: t0}
	p.add(&hoso.Event{Type: hoso.EventReceived, Unit: u.code, At: t0, Procedure: proc.code, Channel: ch, Days: proc.days})
	due, err := g.cal.Due(p.province, t0, proc.days)
	if err != nil {
		return // cannot happen: the table's days are valid
	}
	budget := time.Duration(proc.days * 8 * float64(time.Hour))

	// Transfers up the hierarchy: ward → district → province.
	if r := g.rng.Float64(); (u.level == hoso.LevelWard && r < 0.12) || (u.level == hoso.LevelDistrict && r < 0.05) {
		p.transferUp(g.minutes(30, 240))
		if u.level == hoso.LevelWard && g.rng.Float64() < 0.25 {
			p.transferUp(g.minutes(60, 480))
		}
	}
	// Withdrawn before any decision.
	if g.rng.Float64() < 0.03 {
		p.advance(g.minutes(10, max(11, int(budget.Minutes()))))
		p.add(&hoso.Event{Type: hoso.EventWithdrawn, Unit: p.owner, At: p.t, Reason: "người nộp rút hồ sơ"})
		return
	}
	// Stuck: nobody acts again before the period ends.
	if g.rng.Float64() < 0.01 {
		return
	}
	// Supplement cycles: the clock restarts when the supplement arrives.
	for cycle := 0; cycle < 2 && g.rng.Float64() < []float64{0.10, 0.25}[cycle]; cycle++ {
		p.advance(g.minutes(30, max(31, int(budget.Minutes()/2))))
		p.add(&hoso.Event{Type: hoso.EventSupplementRequested, Unit: p.owner, At: p.t, Reason: "hồ sơ thiếu giấy tờ, đề nghị bổ sung"})
		if g.rng.Float64() < 0.15 {
			p.t = g.cal.AddWorkingTime(p.province, p.t.Add(time.Duration(15+g.rng.IntN(20))*24*time.Hour), g.minutes(0, 240))
			p.add(&hoso.Event{Type: hoso.EventWithdrawn, Unit: p.owner, At: p.t, Reason: "không bổ sung hồ sơ"})
			return
		}
		p.t = g.cal.AddWorkingTime(p.province, p.t.Add(time.Duration(1+g.rng.IntN(10))*24*time.Hour), g.minutes(0, 240))
		due, _ = g.cal.Due(p.province, p.t, proc.days)
		p.add(&hoso.Event{Type: hoso.EventSupplementReceived, Unit: p.owner, At: p.t, Due: due})
	}
	// The resolution, early, on time or late against the statutory due.
	at := p.resolution(due, budget)
	if hoso.LocalDate(at) > hoso.LocalDate(due) && g.rng.Float64() < 0.3 {
		// An apology letter with a new promised date before resolving late.
		p.t = p.t.Add(at.Sub(p.t) / 2)
		promised := localDay(at.In(hoso.VietnamZone)).Add(17 * time.Hour)
		p.add(&hoso.Event{Type: hoso.EventExtended, Unit: p.owner, At: p.t, Due: promised, Reason: "xin lỗi, hẹn lại ngày trả kết quả"})
	}
	p.t = at
	outcome := hoso.OutcomeApproved
	if g.rng.Float64() < 0.06 {
		outcome = hoso.OutcomeRejected
	}
	p.add(&hoso.Event{Type: hoso.EventResolved, Unit: p.owner, At: p.t, Outcome: outcome})
	if g.rng.Float64() < 0.85 {
		p.advance(g.minutes(10, 960))
		p.add(&hoso.Event{Type: hoso.EventReturned, Unit: p.owner, At: p.t})
	}
}

// minutes is a random working duration in [lo, hi) minutes.
func (g *Generator) minutes(lo, hi int) time.Duration {
	if hi <= lo {
		return time.Duration(lo) * time.Minute
	}
	return time.Duration(lo+g.rng.IntN(hi-lo)) * time.Minute
}

// plan is one dossier's life being written.
type plan struct {
	g        *Generator
	code     string
	province string
	owner    string
	t        time.Time
	version  int
}

func (p *plan) add(e *hoso.Event) {
	p.version++
	e.Dossier = p.code
	e.ID = fmt.Sprintf("%s.%d", p.code, p.version)
	e.At = e.At.Truncate(time.Minute)
	p.t = e.At
	p.g.order++
	p.g.left[p.code]++
	heap.Push(&p.g.queue, queued{e: e, order: p.g.order})
}

// advance moves the dossier's clock by d of working time.
func (p *plan) advance(d time.Duration) {
	p.t = p.g.cal.AddWorkingTime(p.province, p.t, d)
}

// transferUp hands the dossier to its owner's parent, if it has one then.
func (p *plan) transferUp(after time.Duration) {
	at := p.g.cal.AddWorkingTime(p.province, p.t, after)
	u, ok := p.g.units.At(p.owner, at)
	if !ok || u.Parent == "" {
		return
	}
	if _, ok := p.g.units.At(u.Parent, at); !ok {
		return
	}
	p.add(&hoso.Event{Type: hoso.EventTransferred, Unit: p.owner, At: at, ToUnit: u.Parent})
	p.owner = u.Parent
}

// resolution picks when the dossier is resolved: late for LateShare of
// them, on the due date for a quarter, before it otherwise.
func (p *plan) resolution(due time.Time, budget time.Duration) time.Time {
	g := p.g
	dueDay := localDay(due.In(hoso.VietnamZone))
	r := g.rng.Float64()
	if r >= g.cfg.LateShare+0.25 {
		// Early: a working moment before the due date.
		if avail := g.cal.WorkingTimeBetween(p.province, p.t, dueDay); avail > 2*time.Minute {
			return g.cal.AddWorkingTime(p.province, p.t, g.minutes(1, int(avail.Minutes())-1))
		}
	}
	if r >= g.cfg.LateShare {
		// On time: on the due date, not after the due moment.
		lo := p.t
		if dueDay.Add(8 * time.Hour).After(lo) {
			lo = dueDay.Add(8 * time.Hour)
		}
		if !lo.After(due) {
			span := int(due.Sub(lo).Minutes())
			at := lo.Add(g.minutes(0, span+1))
			if hoso.LocalDate(at) == hoso.LocalDate(due) && !at.Before(p.t) {
				return at
			}
		}
	}
	// Late: one to ten working days after the due date.
	from := dueDay.AddDate(0, 0, 1)
	if p.t.After(from) {
		from = p.t
	}
	return g.cal.AddWorkingTime(p.province, from, g.minutes(30, int(max(budget, 8*time.Hour).Minutes())+10*8*60))
}

// queued is an event waiting for its time.
type queued struct {
	e     *hoso.Event
	order uint64
}

// eventQueue orders events by time, then by when they were planned, which
// keeps each dossier's events in order.
type eventQueue []queued

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if c := q[i].e.At.Compare(q[j].e.At); c != 0 {
		return c < 0
	}
	return q[i].order < q[j].order
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *eventQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
