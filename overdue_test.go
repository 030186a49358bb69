package hoso_test

import (
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
)

func TestOverdueEventID(t *testing.T) {
	due := time.Date(2024, 3, 6, 17, 0, 0, 0, hoso.VietnamZone)
	tests := []struct {
		name      string
		code      string
		due       time.Time
		sameAsRef bool
	}{
		{"same dossier and instant in another zone", "A-1", due.UTC(), true},
		{"another due", "A-1", due.Add(time.Nanosecond), false},
		{"another dossier", "A-2", due, false},
	}
	ref := hoso.OverdueEventID("A-1", due)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := hoso.OverdueEventID(tt.code, tt.due)
			if (id == ref) != tt.sameAsRef {
				t.Fatalf("OverdueEventID(%q, %s) = %q, reference %q: same = %v, want %v", tt.code, tt.due, id, ref, id == ref, tt.sameAsRef)
			}
			if len(id) > hoso.MaxIDLength {
				t.Fatalf("id %q longer than %d", id, hoso.MaxIDLength)
			}
		})
	}
	// The longest dossier code still gives an acceptable id.
	long := "A" + "123456789012345678901234567890123456789012345678901234567890123"
	e := hoso.NewOverdueEvent(long, "00127", due)
	b, err := e.MarshalStored()
	if err != nil {
		t.Fatal(err)
	}
	if len(e.ID) > hoso.MaxIDLength {
		t.Fatalf("id of the longest code is %d chars", len(e.ID))
	}
	if _, err := hoso.UnmarshalStored(b); err != nil {
		t.Fatalf("stored overdue event does not read back: %v", err)
	}
	if !e.At.Equal(due) || e.Type != hoso.EventOverdue {
		t.Fatalf("event %+v", e)
	}
}
