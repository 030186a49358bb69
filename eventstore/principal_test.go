package eventstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hoso-ledger/hoso"
)

// TestAppendAttributesAndScopes: the ledger records who submitted each
// event, from the principal the door put in the context, and refuses a
// desk's event for a unit outside its scope without storing anything.
func TestAppendAttributesAndScopes(t *testing.T) {
	s := openStore(t)
	in := newIngester(t, s)
	as := func(name string, role hoso.Role, unit string) context.Context {
		return hoso.NewContextWithPrincipal(context.Background(), &hoso.Principal{Name: name, Role: role, Unit: unit})
	}
	ward := as("desk-00127", hoso.RoleDesk, "00127")
	district := as("desk-004", hoso.RoleDesk, "004")

	if _, err := in.Append(ward, decode(t, received("BY1"))); err != nil {
		t.Fatal(err)
	}
	// A district's desk covers its wards.
	if _, err := in.Append(district, decode(t, `{"type":"resolved","dossier":"BY1","unit":"00127","at":"2024-03-01T11:00:00+07:00","outcome":"approved"}`)); err != nil {
		t.Fatal(err)
	}
	// Without a principal the event is the ledger's own.
	if _, err := in.Append(context.Background(), decode(t, received("BY2"))); err != nil {
		t.Fatal(err)
	}
	seq := lastSeq(t, s)

	for _, tt := range []struct {
		name  string
		ctx   context.Context
		js    string
		field string
		msg   string
	}{
		{"another ward", ward, strings.Replace(received("BY3"), "00127", "00115", 1), "unit", "unit 00115 is outside desk-00127's scope (unit 00127)"},
		{"the district itself", ward, strings.Replace(received("BY4"), `"00127"`, `"004"`, 1), "unit", "unit 004 is outside"},
		{"supervisor", as("sup-004", hoso.RoleSupervisor, "004"), received("BY5"), "", "only a desk may"},
		{"admin", as("admin", hoso.RoleAdmin, ""), received("BY6"), "", "only a desk may"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := in.Append(tt.ctx, decode(t, tt.js))
			if hoso.ErrorCode(err) != hoso.EFORBIDDEN || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want EFORBIDDEN containing %q", err, tt.msg)
			}
			var he *hoso.Error
			if errors.As(err, &he); he.Field != tt.field {
				t.Errorf("field = %q, want %q", he.Field, tt.field)
			}
		})
	}
	if got := lastSeq(t, s); got != seq {
		t.Fatalf("a refused event was stored: last seq %d, want %d", got, seq)
	}

	want := map[string][]string{"BY1": {"desk-00127", "desk-004"}, "BY2": {hoso.SystemPrincipal}}
	for code, by := range want {
		evs, err := s.LoadDossier(context.Background(), code)
		if err != nil || len(evs) != len(by) {
			t.Fatalf("LoadDossier(%s) = %d events, %v", code, len(evs), err)
		}
		for i, e := range evs {
			if e.By != by[i] {
				t.Errorf("%s event %d: by = %q, want %q", code, i, e.By, by[i])
			}
		}
	}
}
