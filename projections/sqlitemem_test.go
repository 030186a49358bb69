package projections_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hoso-ledger/hoso/projections"
)

// SQLite's allocator is visible to the process (the scale bench prints it)
// and its soft heap limit can be set and taken back.
func TestSQLiteMemory(t *testing.T) {
	db, err := projections.Open(filepath.Join(t.TempDir(), "rm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AppliedSeq(context.Background()); err != nil {
		t.Fatal(err)
	}
	used, peak := projections.SQLiteMemory(false)
	if used <= 0 || peak < used {
		t.Fatalf("SQLite memory with an open read model: %d bytes used, %d at most; want used > 0 and peak ≥ used", used, peak)
	}
	prev := projections.LimitSQLiteMemory(64 << 20)
	defer projections.LimitSQLiteMemory(prev)
	if got := projections.LimitSQLiteMemory(32 << 20); got != 64<<20 {
		t.Fatalf("soft heap limit was %d, want %d as set", got, 64<<20)
	}
}
