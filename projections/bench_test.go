package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
)

// dataset generates n dossiers of 2020 over every ward of Hà Nội and 40
// procedures, with transfers, supplements, resolutions, returns and
// withdrawals, in ledger order (sorted by time, as desks would send them).
func dataset(b *testing.B, n int) []hoso.LedgerEntry {
	b.Helper()
	u, _ := registry(b)
	var wards []string
	for _, w := range u.Descendants("01", hoso.LevelWard, vn(2020, 6, 1, 12, 0)) {
		wards = append(wards, w.Code)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	minutes := func(max int) time.Duration { return time.Duration(rng.IntN(max)) * time.Minute }
	var all []*dossierBuilder
	for i := range n {
		at := vn(2020, 1, 1, 8, 0).Add(minutes(360 * 24 * 60))
		d := newDossier(b, fmt.Sprintf("B%07d", i), wards[rng.IntN(len(wards))], fmt.Sprintf("1.%06d", rng.IntN(40)),
			[]hoso.Channel{hoso.ChannelDirect, hoso.ChannelOnline, hoso.ChannelPostal}[rng.IntN(3)],
			at, at.Add(24*time.Hour+minutes(15*24*60)))
		next := func() time.Time { return d.d.LastAt.Add(minutes(6 * 24 * 60)) }
		if to := wards[rng.IntN(len(wards))]; rng.IntN(10) == 0 && to != d.d.Owner {
			d.transfer(next(), to)
		}
		if rng.IntN(7) == 0 {
			d.pause(next())
			at := next()
			d.resume(at, at.Add(minutes(10*24*60)))
		}
		switch r := rng.IntN(20); {
		case r == 0:
			d.withdraw(next())
		case r < 17:
			d.resolve(next()).ret(next())
		}
		all = append(all, d)
	}
	// Merge by time; the sort is stable, so each dossier keeps its order.
	var events []*hoso.Event
	for _, d := range all {
		events = append(events, d.events...)
	}
	slices.SortStableFunc(events, func(a, b *hoso.Event) int { return a.At.Compare(b.At) })
	return toMsgs(b, events)
}

// BenchmarkProjectorApply projects 20,000 dossiers (about 60,000 events)
// into a new file in batches of RunBatch; the figure is events/s.
func BenchmarkProjectorApply(b *testing.B) {
	u, _ := registry(b)
	msgs := dataset(b, 20_000)
	b.ResetTimer()
	var applied int
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		db, err := projections.Open(fmt.Sprintf("%s/apply%d.db", b.TempDir(), i))
		if err != nil {
			b.Fatal(err)
		}
		p := projections.NewProjector(db, u)
		b.StartTimer()
		for _, batch := range splitBatches(msgs, projections.RunBatch) {
			if err := p.Apply(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		applied += len(msgs)
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(applied)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReport answers reports over 50,000 dossiers of 2020.
func BenchmarkReport(b *testing.B) {
	u, _ := registry(b)
	db, _ := openDB(b)
	p := projections.NewProjector(db, u)
	for _, batch := range splitBatches(dataset(b, 50_000), projections.RebuildBatch) {
		if err := p.Apply(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    projections.ReportQuery
	}{
		{"HaNoi-wards-year", projections.ReportQuery{Unit: "01", Level: hoso.LevelWard, From: "2020-01-01", To: "2020-12-31"}},
		{"HaNoi-districts-odd-period", projections.ReportQuery{Unit: "01", Level: hoso.LevelDistrict, From: "2020-02-17", To: "2020-11-09"}},
		{"LongBien-wards-month", projections.ReportQuery{Unit: "004", Level: hoso.LevelWard, From: "2020-03-01", To: "2020-03-31"}},
		{"country-provinces-year", projections.ReportQuery{From: "2020-01-01", To: "2020-12-31"}},
		{"HaNoi-by-procedure-quarter", projections.ReportQuery{Unit: "01", From: "2020-04-01", To: "2020-06-30", By: projections.ByProcedure}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := db.Report(context.Background(), u, tc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
