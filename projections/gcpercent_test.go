package projections

import (
	"runtime/debug"
	"testing"
)

// TestRaiseGCPercent raises Go's default GOGC for a load and puts it back,
// and leaves a higher value, or the collector off, as it is.
func TestRaiseGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	restore := raiseGCPercent()
	// A test process's live heap is far below loadGCHeadroom.
	if got := debug.SetGCPercent(-1); got != loadGCPercent {
		t.Errorf("GOGC during a load: %d, want %d", got, loadGCPercent)
	}
	debug.SetGCPercent(loadGCPercent)
	restore()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after a load: %d, want 100", got)
	}
	for _, set := range []int{800, -1} {
		debug.SetGCPercent(set)
		restore := raiseGCPercent()
		if got := debug.SetGCPercent(set); got != set {
			t.Errorf("GOGC %d during a load: %d", set, got)
		}
		restore()
		if got := debug.SetGCPercent(set); got != set {
			t.Errorf("GOGC %d after a load: %d", set, got)
		}
	}
}
