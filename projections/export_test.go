package projections

import (
	"context"

	"github.com/hoso-ledger/hoso"
)

// SetTestHook makes p call hook between the statements of each batch's
// transaction, so that tests can fail or kill it there.
func SetTestHook(p *Projector, hook func(ctx context.Context, stage string) error) { p.hook = hook }

// TestStages are the points where the hook runs, in order.
var TestStages = []string{"dossiers", "flows", "stocks", "transfers", "meta"}

// BulkLoader fills a new read model the way a rebuild does, from batches
// the caller makes (benchmarks at sizes no test stream holds).
type BulkLoader struct{ b *builder }

// NewBulkLoader starts a bulk load into a new file at path.
func NewBulkLoader(ctx context.Context, units *hoso.Units, path string) (*BulkLoader, error) {
	b, err := newBuilder(ctx, units, path)
	return &BulkLoader{b}, err
}

// Apply projects one batch.
func (l *BulkLoader) Apply(ctx context.Context, msgs []hoso.LedgerEntry) error {
	return l.b.p.Apply(ctx, msgs)
}

// Finish ends the load as a rebuild does and closes the file.
func (l *BulkLoader) Finish(ctx context.Context) error {
	defer l.b.db.Close()
	if err := l.b.endBulk(ctx); err != nil {
		return err
	}
	return l.b.finish()
}
