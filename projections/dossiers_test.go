package projections_test

import (
	"context"
	"testing"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/projections"
)

// A dossier is served with the projected state when the projection has
// reached its last event, and folded from the ledger when it has not.
func TestDossiersFallsBackToTheLedger(t *testing.T) {
	store, in := openStore(t)
	db, _ := openDB(t)
	u, _ := registry(t)
	p := projections.NewProjector(db, u)
	svc := &projections.Dossiers{DB: db, History: store, Now: clock}
	ctx := context.Background()

	d := newDossier(t, "F1", "00127", "1.001776", hoso.ChannelDirect, vn(2021, 1, 4, 8, 0), vn(2021, 1, 6, 17, 0))
	appendAll(t, in, d.events)
	if v, err := svc.FindDossier(ctx, "F1"); err != nil || v.State != hoso.StateProcessing || len(v.Events) != 1 {
		t.Fatalf("not yet projected: %+v %v", v, err)
	}
	project := func() {
		t.Helper()
		err := store.Read(ctx, p.AppliedSeq()+1, false, func(m hoso.LedgerEntry) error {
			return p.Apply(ctx, []hoso.LedgerEntry{m})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	project()

	d.add(&hoso.Event{Type: hoso.EventSupplementRequested, At: vn(2021, 1, 4, 8, 30), Reason: "missing copy"})
	appendAll(t, in, d.events[1:])
	// The projection says processing at seq 1; the ledger has seq 2.
	if pd, err := db.Dossier(ctx, "F1"); err != nil || pd.State != hoso.StateProcessing {
		t.Fatalf("projected %+v %v", pd, err)
	}
	v, err := svc.FindDossier(ctx, "F1")
	if err != nil || v.State != hoso.StateAwaitingSupplement || v.Classification != hoso.ClassPaused || len(v.Events) != 2 || v.LastSeq != 2 {
		t.Fatalf("behind the ledger: %+v %v", v, err)
	}
	project()
	v, err = svc.FindDossier(ctx, "F1")
	if err != nil || v.State != hoso.StateAwaitingSupplement || len(v.Events) != 2 || v.Events[1].Seq != 2 {
		t.Fatalf("projected: %+v %v", v, err)
	}

	if _, err := svc.FindDossier(ctx, "NOPE"); hoso.ErrorCode(err) != hoso.ENOTFOUND {
		t.Fatalf("unknown dossier: %v", err)
	}
}
