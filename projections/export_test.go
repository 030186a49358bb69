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

// SetClosedBatch makes the load write returned and withdrawn dossiers
// whenever n of them wait.
func (l *BulkLoader) SetClosedBatch(n int) { l.b.l.closedBatch = n }

// SetSpillAfterDays makes the load write resolved dossiers not returned n
// days after their resolution (spillAfterDays).
func (l *BulkLoader) SetSpillAfterDays(n int) { l.b.l.spillAfter = int32(n) }

// Spilled is how many dossiers the load wrote while resolved, and how many
// of those it saw returned after.
func (l *BulkLoader) Spilled() (spilled, returnedAfter int) {
	return l.b.l.spilledCount, l.b.l.lateReturns
}

// Apply folds one batch.
func (l *BulkLoader) Apply(ctx context.Context, msgs []hoso.LedgerEntry) error {
	return l.b.l.apply(ctx, msgs, nil)
}

// ApplyEvents folds events already decoded, with their Seq set and in
// stream order; the stream time of each is its RecordedAt.
func (l *BulkLoader) ApplyEvents(ctx context.Context, events []*hoso.Event) error {
	msgs := make([]hoso.LedgerEntry, len(events))
	for i, e := range events {
		msgs[i] = hoso.LedgerEntry{Seq: e.Seq, Time: e.RecordedAt}
	}
	return l.b.l.apply(ctx, msgs, events)
}

// Finish ends the load as a rebuild does and closes the file.
func (l *BulkLoader) Finish(ctx context.Context) error {
	defer l.b.db.Close()
	if err := l.b.endLoad(ctx); err != nil {
		return err
	}
	return l.b.finish()
}
