package hoso_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
)

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		field string // the field the error must name; "" for whole-body errors
		want  string // substring of the message
	}{
		{"malformed", `{"type":`, "", "malformed JSON"},
		{"not an object", `["x"]`, "", "JSON object"},
		{"trailing data", `{"type":"received"} x`, "", "after the event object"},
		{"unknown field", `{"type":"received","colour":"red"}`, "colour", "unknown field"},
		{"type missing", `{"dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00"}`, "type", "required"},
		{"bad type", `{"type":"approved","dossier":"A1"}`, "type", `"approved"`},
		{"bad dossier", `{"type":"received","dossier":".bad","unit":"00127"}`, "dossier", `".bad"`},
		{"dossier too long", `{"type":"received","dossier":"` + strings.Repeat("a", 65) + `","unit":"00127"}`, "dossier", "64"},
		{"dossier wrong type", `{"type":"received","dossier":7}`, "dossier", "must be a string"},
		{"unit missing", `{"type":"returned","dossier":"A1","at":"2024-03-01T09:00:00+07:00"}`, "unit", "required"},
		{"at missing", `{"type":"returned","dossier":"A1","unit":"00127"}`, "at", "required"},
		{"at without offset", `{"type":"returned","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00"}`, "at", "RFC 3339"},
		{"both due and days", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"1.001776","channel":"direct","due":"2024-03-05T09:00:00+07:00","days":3}`, "due", "exactly one"},
		{"neither due nor days", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"1.001776","channel":"direct"}`, "due", "exactly one"},
		{"bad channel", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"1.001776","channel":"fax","days":3}`, "channel", `"fax"`},
		{"channel missing", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"1.001776","days":3}`, "channel", "required"},
		{"procedure missing", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","channel":"direct","days":3}`, "procedure", "required"},
		{"days negative", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"p","channel":"direct","days":-1}`, "days", "-1"},
		{"days string", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"p","channel":"direct","days":"3"}`, "days", `"3"`},
		{"due before at", `{"type":"received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","procedure":"p","channel":"direct","due":"2024-02-01T09:00:00+07:00"}`, "due", "before at"},
		{"field of another type", `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","to_unit":"00130"}`, "to_unit", "not allowed on a resolved event"},
		{"to_unit missing", `{"type":"transferred","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00"}`, "to_unit", "required"},
		{"bad outcome", `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","outcome":"maybe"}`, "outcome", `"maybe"`},
		{"supplement without due", `{"type":"supplement_received","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00"}`, "due", "required"},
		{"reason too long", `{"type":"withdrawn","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","reason":"` + strings.Repeat("x", 1001) + `"}`, "reason", "1000"},
		{"empty id", `{"id":"","type":"returned","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00"}`, "id", "1 to 128"},
		{"bad expected_version", `{"type":"returned","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","expected_version":-2}`, "expected_version", "-2"},
		{"server field version", `{"type":"returned","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","version":3}`, "version", "unknown field"},
		{"server field by", `{"type":"returned","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00","by":"desk-00115"}`, "by", "set by the ledger from the sender's credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hoso.DecodeEvent([]byte(tt.in))
			if err == nil {
				t.Fatal("decoded, want an error")
			}
			if code := hoso.ErrorCode(err); code != hoso.EINVALID {
				t.Errorf("code = %q, want invalid", code)
			}
			var e *hoso.Error
			if !asError(err, &e) || e.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", fieldOf(err), tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.field != "" && !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name the field %q", err, tt.field)
			}
		})
	}
}

func TestDecodeEventCanonicalRoundTrip(t *testing.T) {
	e, err := hoso.DecodeEvent([]byte(`{"type":"received","dossier":"000.00.31.H26-200105-0001","unit":"00127",
		"at":"2020-01-05T09:30:00+07:00","procedure":"1.001776","channel":"online","days":0.5,"id":"desk-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !e.At.Equal(time.Date(2020, 1, 5, 2, 30, 0, 0, time.UTC)) {
		t.Errorf("at = %v", e.At)
	}
	e.Due = time.Date(2020, 1, 6, 5, 30, 0, 0, time.UTC)
	e.Version = 1
	e.RecordedAt = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := e.MarshalStored()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"desk-1","type":"received","dossier":"000.00.31.H26-200105-0001","unit":"00127","at":"2020-01-05T02:30:00Z","procedure":"1.001776","channel":"online","due":"2020-01-06T05:30:00Z","days":0.5,"version":1,"recorded_at":"2024-01-01T00:00:00Z"}`
	if string(b) != want {
		t.Errorf("stored =\n%s\nwant\n%s", b, want)
	}
	back, err := hoso.UnmarshalStored(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalStored()
	if string(again) != want {
		t.Errorf("stored form does not round-trip:\n%s", again)
	}
	if !hoso.SameRequest(back, e) {
		t.Error("SameRequest(stored, original) = false")
	}
	other := *e
	other.Procedure = "1.000001"
	if hoso.SameRequest(back, &other) {
		t.Error("SameRequest with a different procedure = true")
	}
}

func TestDeriveIDIsContentHash(t *testing.T) {
	in := `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00"}`
	a, _ := hoso.DecodeEvent([]byte(in))
	b, _ := hoso.DecodeEvent([]byte(`{"unit":"00127","dossier":"A1","at":"2024-03-01T02:00:00Z","type":"resolved"}`))
	c, _ := hoso.DecodeEvent([]byte(`{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:01+07:00"}`))
	if a.DeriveID() != b.DeriveID() {
		t.Error("the same event written differently derives different ids")
	}
	if a.DeriveID() == c.DeriveID() {
		t.Error("different events derive the same id")
	}
	if n := len(a.DeriveID()); n > hoso.MaxIDLength {
		t.Errorf("derived id is %d long", n)
	}
}

func TestCheckClock(t *testing.T) {
	now := time.Date(2024, 3, 1, 2, 0, 0, 0, time.UTC)
	e := &hoso.Event{At: now.Add(4 * time.Minute)}
	if err := e.CheckClock(now); err != nil {
		t.Errorf("4 minutes ahead: %v", err)
	}
	e.At = now.Add(6 * time.Minute)
	if err := e.CheckClock(now); err == nil || fieldOf(err) != "at" || !strings.Contains(err.Error(), "future") {
		t.Errorf("6 minutes ahead: %v", err)
	}
}

func TestParsePayload(t *testing.T) {
	ev := `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00"}`
	tests := []struct {
		name   string
		body   string
		ndjson bool
		batch  bool
		n      int
		bad    []int
	}{
		{"single", ev, false, false, 1, nil},
		{"array", "[" + ev + "," + ev + "]", false, true, 2, nil},
		{"array with a bad item", "[" + ev + `,{"type":"x"},` + ev + "]", false, true, 3, []int{1}},
		{"ndjson", ev + "\n" + ev + "\n", true, true, 2, nil},
		{"ndjson one line is still a batch", ev + "\n", true, true, 1, nil},
		{"ndjson bad middle line", ev + "\n{oops\n" + ev, true, true, 3, []int{1}},
		{"concatenated objects", ev + "\n" + ev, false, true, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := hoso.ParsePayload([]byte(tt.body), tt.ndjson)
			if err != nil {
				t.Fatal(err)
			}
			if p.Batch != tt.batch || len(p.Events) != tt.n {
				t.Fatalf("batch=%v n=%d, want %v %d", p.Batch, len(p.Events), tt.batch, tt.n)
			}
			for i := range p.Events {
				wantBad := false
				for _, b := range tt.bad {
					wantBad = wantBad || b == i
				}
				if (p.Errs[i] != nil) != wantBad {
					t.Errorf("item %d: err = %v, want bad=%v", i, p.Errs[i], wantBad)
				}
			}
		})
	}
	for _, body := range []string{"", "  ", "[]", "[1,", "{"} {
		if _, err := hoso.ParsePayload([]byte(body), false); hoso.ErrorCode(err) != hoso.EINVALID {
			t.Errorf("ParsePayload(%q) err = %v, want invalid", body, err)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"received","dossier":"000.00.31.H26-200105-0001","unit":"00127","at":"2020-01-05T09:30:00+07:00","procedure":"1.001776","channel":"online","days":15}`,
		`{"id":"k-1","type":"transferred","dossier":"A-1","unit":"00127","to_unit":"004","at":"2020-01-06T09:30:00+07:00","expected_version":1}`,
		`{"type":"supplement_requested","dossier":"A_1","unit":"004","at":"2020-01-07T10:00:00+07:00","reason":"thiếu bản sao CCCD"}`,
		`{"type":"supplement_received","dossier":"A_1","unit":"004","at":"2020-01-09T10:00:00+07:00","due":"2020-01-20T17:00:00+07:00"}`,
		`{"type":"resolved","dossier":"A1","unit":"004","at":"2020-01-15T16:00:00+07:00","outcome":"rejected"}`,
		`{"type":"withdrawn","dossier":"A1","unit":"004","at":"2020-01-15T16:00:00Z","reason":""}`,
		`{"type":"received","days":1e400}`, `[]`, `{}`, `null`, `{"at":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := hoso.DecodeEvent(data)
		if err != nil {
			if hoso.ErrorCode(err) != hoso.EINVALID {
				t.Fatalf("decode error with code %q: %v", hoso.ErrorCode(err), err)
			}
			return
		}
		if !hoso.ValidDossierCode(e.Dossier) || e.Unit == "" || e.At.IsZero() {
			t.Fatalf("accepted an event without dossier, unit or at: %+v", e)
		}
		b, err := e.MarshalStored()
		if err != nil {
			t.Fatal(err)
		}
		back, err := hoso.UnmarshalStored(b)
		if err != nil {
			t.Fatalf("stored form does not decode: %v\n%s", err, b)
		}
		if !hoso.SameRequest(back, e) {
			t.Fatalf("stored form changes the event:\n%s", b)
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	ev := `{"type":"resolved","dossier":"A1","unit":"00127","at":"2024-03-01T09:00:00+07:00"}`
	f.Add([]byte(ev), false)
	f.Add([]byte("["+ev+","+ev+"]"), false)
	f.Add([]byte(ev+"\n"+ev), true)
	f.Add([]byte(ev+"\n{"), false)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		p, err := hoso.ParsePayload(body, ndjson)
		if err != nil {
			if hoso.ErrorCode(err) != hoso.EINVALID {
				t.Fatalf("code %q: %v", hoso.ErrorCode(err), err)
			}
			return
		}
		if len(p.Events) == 0 || len(p.Events) != len(p.Errs) {
			t.Fatalf("%d events, %d errors", len(p.Events), len(p.Errs))
		}
		for i := range p.Events {
			if (p.Events[i] == nil) == (p.Errs[i] == nil) {
				t.Fatalf("item %d: event %v err %v", i, p.Events[i], p.Errs[i])
			}
		}
	})
}
