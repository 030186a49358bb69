package handlers

import (
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Codes are reused across the 2025 reform: a unit is named as it stood at
// the time asked, never by what its code means today.
func TestUnitNameAtTime(t *testing.T) {
	units, err := hoso.LoadUnits()
	if err != nil {
		t.Fatal(err)
	}
	d := &dashboard{Dashboard: Dashboard{Registry: units}}
	for _, tt := range []struct {
		code string
		at   time.Time
		want string
	}{
		{"00118", time.Date(2024, 3, 5, 9, 0, 0, 0, hoso.VietnamZone), "Phường Ngọc Thụy"},
		{"00118", time.Date(2026, 3, 5, 9, 0, 0, 0, hoso.VietnamZone), "Phường Bồ Đề"},
		{"004", time.Date(2026, 3, 5, 9, 0, 0, 0, hoso.VietnamZone), "Quận Long Biên"}, // gone: its last name
		{"99999", time.Date(2026, 3, 5, 9, 0, 0, 0, hoso.VietnamZone), "99999"},
	} {
		if got := d.unitName(tt.code, tt.at); got != tt.want {
			t.Errorf("unitName(%s, %s) = %q, want %q", tt.code, tt.at.Format(time.DateOnly), got, tt.want)
		}
	}
}
