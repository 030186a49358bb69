package clustertest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/simulate"
)

// History simulates a year (2023) of Hà Nội's dossiers and splits their
// events, as NDJSON lines, between two desk systems, each dossier wholly to
// one of them, so that each sender's events of a dossier stay in order.
func History(t testing.TB, units *hoso.Units, cal *hoso.Calendar, dossiers int, seed uint64, now time.Time) (lines [2][][]byte, sum *simulate.Summary) {
	t.Helper()
	g, err := simulate.New(units, cal, simulate.Config{
		Scope: "01", From: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC),
		Dossiers: dossiers, Seed: seed, LateShare: simulate.DefaultLateShare, Level: hoso.LevelDistrict, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err = g.Run(context.Background(), func(e *hoso.Event) error {
		h := sha256.Sum256([]byte(e.Dossier))
		lines[h[0]&1] = append(lines[h[0]&1], simulate.AppendLine(nil, e))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines, sum
}
