package projections

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultScrapeTimeout bounds the read model's queries of one scrape.
const DefaultScrapeTimeout = 5 * time.Second

// The deadline_state label values of hoso_open_dossiers.
var deadlineStates = []string{"in_deadline", "due_soon", "overdue", "paused"}

// The result label values of hoso_dossiers_resolved_total.
var resolvedResults = []string{string(hoso.ClassEarly), string(hoso.ClassOnTime), string(hoso.ClassLate)}

// Collector is the read model's Prometheus collector. On every scrape it
// reads the stream's and the projection's positions and, from SQLite, the
// open dossiers of every unit by deadline state and the resolved dossiers
// by result, so the gauges are never older than the read model itself.
// The SQLite queries of one scrape are bounded by Timeout.
type Collector struct {
	DB        *DB
	Projector *Projector
	Ledger    hoso.Ledger
	Units     *hoso.Units
	Calendar  *hoso.Calendar
	Now       hoso.Clock
	Logger    *slog.Logger
	// DueSoon is the due_soon horizon in working time, counted from the
	// scrape's instant with the working calendar of each unit's province.
	DueSoon time.Duration
	// Timeout bounds the read model's queries of one scrape.
	Timeout time.Duration

	mu        sync.Mutex
	waitSince time.Time // first scrape that saw events waiting and nothing applied yet
}

var _ prometheus.Collector = (*Collector)(nil)

var (
	descStreamLastSeq = prometheus.NewDesc("hoso_stream_last_seq",
		"Sequence of the last event in the stream HOSO_EVENTS.", nil, nil)
	descAppliedSeq = prometheus.NewDesc("hoso_projection_applied_seq",
		"Stream sequence the SQLite read model has applied and committed.", nil, nil)
	descLagEvents = prometheus.NewDesc("hoso_projection_lag_events",
		"Events in the stream not yet applied to the read model.", nil, nil)
	descLagSeconds = prometheus.NewDesc("hoso_projection_lag_seconds",
		"While events wait to be applied, seconds since the stream stored the last applied one (or since start when none was); 0 when caught up.", nil, nil)
	descOpen = prometheus.NewDesc("hoso_open_dossiers",
		"Open dossiers owned by a unit, by deadline state at the scrape's instant, read from the read model.",
		[]string{"unit", "level", "district", "province", "deadline_state"}, nil)
	descResolved = prometheus.NewDesc("hoso_dossiers_resolved_total",
		"Dossiers resolved by the unit that owned them, by result against the statutory due, since the ledger began.",
		[]string{"unit", "level", "district", "province", "result"}, nil)
)

// Describe sends the descriptors of every metric Collect sends.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamLastSeq, descAppliedSeq, descLagEvents, descLagSeconds, descOpen, descResolved} {
		ch <- d
	}
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Collect reads the positions and the read model. A failed read sends an
// invalid metric for that family, so the scrape reports the error while
// the other families still arrive.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultScrapeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	now := c.now()

	applied := c.Projector.AppliedSeq()
	ch <- prometheus.MustNewConstMetric(descAppliedSeq, prometheus.GaugeValue, float64(applied))
	last, err := c.Ledger.LastSeq(ctx)
	if err != nil {
		c.fail(ch, descStreamLastSeq, err)
		c.fail(ch, descLagEvents, err)
		c.fail(ch, descLagSeconds, err)
	} else {
		lag := uint64(0)
		if last > applied {
			lag = last - applied
		}
		ch <- prometheus.MustNewConstMetric(descStreamLastSeq, prometheus.GaugeValue, float64(last))
		ch <- prometheus.MustNewConstMetric(descLagEvents, prometheus.GaugeValue, float64(lag))
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, c.lagSeconds(lag, now))
	}

	due := c.DueSoon
	if due <= 0 {
		due = DefaultDueSoon
	}
	rows, err := c.backlog(ctx, now, due)
	if err != nil {
		c.fail(ch, descOpen, err)
	} else {
		for _, b := range rows {
			l := c.labels(b.Unit, now)
			for i, n := range []int64{b.InDeadline, b.DueSoon, b.Overdue, b.Paused} {
				ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(n), append(l, deadlineStates[i])...)
			}
		}
	}

	resolved, err := c.DB.ResolvedByUnit(ctx)
	if err != nil {
		c.fail(ch, descResolved, err)
		return
	}
	for _, r := range resolved {
		l := c.labels(r.Unit, now)
		for i, n := range []int64{r.Early, r.OnTime, r.Late} {
			ch <- prometheus.MustNewConstMetric(descResolved, prometheus.CounterValue, float64(n), append(l, resolvedResults[i])...)
		}
	}
}

// backlog is DB.Backlog with the due_soon horizon of each unit's province:
// one query with the national horizon, and one more per province whose
// calendar override ends the horizon elsewhere.
func (c *Collector) backlog(ctx context.Context, now time.Time, due time.Duration) ([]BacklogRow, error) {
	national := c.Calendar.AddWorkingTime("", now, due)
	rows, err := c.DB.Backlog(ctx, now, national)
	if err != nil {
		return nil, err
	}
	byProvince := map[string][]int{}
	for i, b := range rows {
		if p := c.Units.Province(b.Unit, now); p != "" {
			byProvince[p] = append(byProvince[p], i)
		}
	}
	for p, idx := range byProvince {
		until := c.Calendar.AddWorkingTime(p, now, due)
		if until.Equal(national) {
			continue
		}
		codes := make([]string, len(idx))
		for j, i := range idx {
			codes[j] = rows[i].Unit
		}
		own, err := c.DB.UnitBacklog(ctx, codes, now, until)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			rows[i] = own[j]
		}
	}
	return rows, nil
}

// lagSeconds is how long the first waiting event has waited at most: the
// time since the stream stored the last applied event.
func (c *Collector) lagSeconds(lag uint64, now time.Time) float64 {
	if lag == 0 {
		return 0
	}
	at := c.Projector.AppliedTime()
	if at.IsZero() {
		// Nothing applied yet (a new read model catching up): count from
		// the first scrape that saw events waiting.
		c.mu.Lock()
		if c.waitSince.IsZero() {
			c.waitSince = now
		}
		at = c.waitSince
		c.mu.Unlock()
	}
	return max(now.Sub(at).Seconds(), 0)
}

// labels are a unit's code, level, district and province at now, as the
// registry knows them ("" for what does not apply or an unknown code).
func (c *Collector) labels(code string, now time.Time) []string {
	u, ok := c.Units.At(code, now)
	if !ok {
		return []string{code, "", "", ""}
	}
	district, province := "", ""
	if u.Level == hoso.LevelDistrict {
		district = u.Code
	}
	if u.Level == hoso.LevelProvince {
		province = u.Code
	}
	for _, a := range c.Units.Ancestors(code, now) {
		switch a.Level {
		case hoso.LevelDistrict:
			district = a.Code
		case hoso.LevelProvince:
			province = a.Code
		}
	}
	return []string{code, string(u.Level), district, province}
}

func (c *Collector) fail(ch chan<- prometheus.Metric, d *prometheus.Desc, err error) {
	if c.Logger != nil {
		c.Logger.Warn("metrics: read model query failed", "metric", d.String(), "err", err)
	}
	ch <- prometheus.NewInvalidMetric(d, fmt.Errorf("read model: %w", err))
}

// ResolvedRow counts the dossiers a unit resolved, by result.
type ResolvedRow struct {
	Unit                string
	Early, OnTime, Late int64
}

// ResolvedByUnit returns, for every unit that resolved dossiers, how many it
// resolved early, on time and late since the ledger began, in order of unit
// code. It sums the yearly aggregates, a table of a few rows per unit.
func (db *DB) ResolvedByUnit(ctx context.Context) ([]ResolvedRow, error) {
	r, done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := r.QueryContext(ctx, `SELECT unit, sum(resolved_early), sum(resolved_on_time), sum(resolved_late)
		FROM flow WHERE grain = 2 GROUP BY unit
		HAVING sum(resolved_early) + sum(resolved_on_time) + sum(resolved_late) > 0 ORDER BY unit`)
	if err != nil {
		return nil, fmt.Errorf("resolved by unit: %w", err)
	}
	defer rows.Close()
	var out []ResolvedRow
	for rows.Next() {
		var x ResolvedRow
		if err := rows.Scan(&x.Unit, &x.Early, &x.OnTime, &x.Late); err != nil {
			return nil, fmt.Errorf("resolved by unit: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("resolved by unit: %w", err)
	}
	return out, nil
}
