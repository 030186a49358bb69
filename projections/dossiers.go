package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Dossiers serves one dossier: its state and classification from the read
// model, its events from the ledger (the read model keeps no event bodies).
// When the projection has not yet reached the dossier's last event, the
// state is folded from the events instead, so a just-appended event is
// never missing from the answer.
type Dossiers struct {
	DB      *DB
	History hoso.DossierHistory
	Now     hoso.Clock
}

var _ hoso.DossierService = (*Dossiers)(nil)

// FindDossier returns the dossier with its events, or ENOTFOUND.
func (s *Dossiers) FindDossier(ctx context.Context, code string) (*hoso.DossierView, error) {
	// The projection first, then the ledger: the events read are then at
	// least as new as the projected state, never older.
	d, err := s.DB.Dossier(ctx, code)
	if err != nil && hoso.ErrorCode(err) != hoso.ENOTFOUND {
		return nil, err
	}
	events, err := s.History.LoadDossier(ctx, code)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, hoso.Errorf(hoso.ENOTFOUND, "dossier %q not found", code)
	}
	if d == nil || d.LastSeq != events[len(events)-1].Seq {
		if d, err = hoso.Fold(events); err != nil {
			return nil, fmt.Errorf("dossier %q does not fold: %w", code, err)
		}
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	return &hoso.DossierView{Dossier: d, Classification: d.Classify(now()), Events: events}, nil
}
