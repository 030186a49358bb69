package projections

import "context"

// SetTestHook makes p call hook between the statements of each batch's
// transaction, so that tests can fail or kill it there.
func SetTestHook(p *Projector, hook func(ctx context.Context, stage string) error) { p.hook = hook }

// TestStages are the points where the hook runs, in order.
var TestStages = []string{"dossiers", "flows", "stocks", "transfers", "meta"}
