package hoso

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// FuzzUnmarshalStored checks the canonical fast path of UnmarshalStored
// against encoding/json: where the fast path parses, encoding/json parses
// to the same event; what MarshalStored writes, the fast path parses.
func FuzzUnmarshalStored(f *testing.F) {
	at := time.Date(2024, 3, 5, 1, 2, 3, 450_000_000, time.UTC)
	for _, e := range []*Event{
		{ID: "a-1", Type: EventReceived, Dossier: "D-1", Unit: "00127", At: at, Procedure: "1.001776",
			Channel: ChannelOnline, Due: at.Add(72 * time.Hour), Version: 1, RecordedAt: at.Add(time.Second)},
		{ID: "h-x", Type: EventTransferred, Dossier: "D.2", Unit: "004", At: at, ToUnit: "00118", Version: 3, RecordedAt: at},
		{ID: "r", Type: EventResolved, Dossier: "x", Unit: "01", At: at, Outcome: OutcomeRejected, Version: 12, RecordedAt: at, By: "desk-01"},
		{ID: "w", Type: EventWithdrawn, Dossier: "x", Unit: "01", At: at, Reason: "thiếu giấy tờ <&> \"q\"", Version: 2, RecordedAt: at},
		{ID: "d", Type: EventReceived, Dossier: "x", Unit: "01", At: at, Procedure: "p", Channel: ChannelDirect, Days: 2.5,
			Due: at, Version: 1, RecordedAt: at},
	} {
		b, err := e.MarshalStored()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, days := range []string{"1e400", "-0", "01", "2.", "1E+2", "0.5e-3", "null", `"2"`} {
		f.Add([]byte(`{"id":"a","type":"received","dossier":"d","unit":"01","at":"2024-02-01T00:00:00Z","days":` +
			days + `,"version":1,"recorded_at":"2024-02-01T00:00:00Z"}`))
	}
	f.Add([]byte(`{"id":"a","type":"received","dossier":"d","unit":"01","at":"2024-02-30T00:00:00Z","version":1,"recorded_at":"2024-02-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"a","type":"x","dossier":"d","unit":"01","at":"2024-02-01T24:00:00.1234567891Z","version":01,"recorded_at":"2024-02-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeStoredCanonical(data)
		slow, err := unmarshalStoredJSON(data)
		if ok {
			if err != nil {
				t.Fatalf("fast path parsed %q, encoding/json did not: %v", data, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q:\nfast %#v\njson %#v", data, fast, slow)
			}
		}
		if err != nil {
			return
		}
		// What MarshalStored writes of what encoding/json read, the fast
		// path reads, unless it holds escaped text.
		b, err := slow.MarshalStored()
		if err != nil {
			t.Fatal(err)
		}
		again, ok := decodeStoredCanonical(b)
		if !ok {
			if !bytes.ContainsRune(b, '\\') && slow.At.Year() >= 0 && slow.At.Year() <= 9999 &&
				slow.RecordedAt.Year() >= 0 && slow.RecordedAt.Year() <= 9999 && slow.Version >= 0 && slow.Version < 1e9 {
				t.Fatalf("fast path refused MarshalStored's %q", b)
			}
			return
		}
		want, err := unmarshalStoredJSON(b)
		if err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("%q: fast %#v, json %#v (%v)", b, again, want, err)
		}
	})
}

// FuzzMarshalStored checks that appendStoredCanonical writes what
// encoding/json writes, wherever it writes at all, and that it writes the
// usual events.
func FuzzMarshalStored(f *testing.F) {
	at := time.Date(2024, 3, 5, 1, 2, 3, 450_000_000, time.UTC).UnixNano()
	f.Add("a-1", "received", "D-1", "00127", at, "1.001776", "online", at+1e12, 2.5, "", "", "", 1, at+1e9, "desk-00127")
	f.Add("h-x", "transferred", "D.2", "004", at, "", "", int64(0), 0.0, "00118", "", "", 3, at, "")
	f.Add("w", "withdrawn", "x", "01", at, "", "", int64(0), 0.0, "", "", "thiếu giấy tờ <&> \"q\" \u2028 \xff", 2, at, "bộ phận <1>")
	f.Add("r", "resolved", "x", "01", int64(-1e18), "", "", int64(0), 1e-7, "", "rejected", "\t", -5, int64(7e18), "hoso")
	f.Fuzz(func(t *testing.T, id, typ, dossier, unit string, atNs int64, procedure, channel string, dueNs int64,
		days float64, toUnit, outcome, reason string, version int, recordedNs int64, by string) {
		e := &Event{ID: id, Type: EventType(typ), Dossier: dossier, Unit: unit, At: time.Unix(0, atNs),
			Procedure: procedure, Channel: Channel(channel), Days: days, ToUnit: toUnit, Outcome: Outcome(outcome),
			Reason: reason, Version: version, RecordedAt: time.Unix(0, recordedNs), By: by}
		if dueNs != 0 {
			e.Due = time.Unix(0, dueNs)
		}
		got, gotErr := e.MarshalStored()
		want, wantErr := e.marshalStoredJSON()
		if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("MarshalStored %s (%v), encoding/json %s (%v)", got, gotErr, want, wantErr)
		}
		plain := true
		for _, v := range []string{id, typ, dossier, unit, procedure, channel, toUnit, outcome, reason, by} {
			_, ok := appendPlainString(nil, v, true)
			plain = plain && ok
		}
		if _, ok := appendStoredCanonical(nil, e); !ok && plain && wantErr == nil && (days == 0 || math.Abs(days) >= 1e-6 && math.Abs(days) < 1e21) {
			t.Fatalf("fast path refused %s", want)
		}
	})
}

// BenchmarkUnmarshalStored compares the canonical fast path with
// encoding/json on a typical stored event.
func BenchmarkUnmarshalStored(b *testing.B) {
	at := time.Date(2024, 3, 5, 1, 2, 3, 450_000_000, time.UTC)
	data, err := (&Event{ID: "000.00.31.H26-240305-0001-1", Type: EventReceived, Dossier: "000.00.31.H26-240305-0001",
		Unit: "00127", At: at, Procedure: "1.001776.000.00.00.H26", Channel: ChannelOnline, Due: at.Add(72 * time.Hour),
		Version: 1, RecordedAt: at.Add(time.Second)}).MarshalStored()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("canonical", func(b *testing.B) {
		for b.Loop() {
			if _, ok := decodeStoredCanonical(data); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := unmarshalStoredJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMarshalStored compares MarshalStored's hand-written canonical
// form with encoding/json's on a typical event.
func BenchmarkMarshalStored(b *testing.B) {
	at := time.Date(2024, 3, 5, 1, 2, 3, 450_000_000, time.UTC)
	e := &Event{ID: "000.00.31.H26-240305-0001-1", Type: EventReceived, Dossier: "000.00.31.H26-240305-0001",
		Unit: "00127", At: at, Procedure: "1.001776.000.00.00.H26", Channel: ChannelOnline, Due: at.Add(72 * time.Hour),
		Days: 5, Version: 1, RecordedAt: at.Add(time.Second)}
	b.Run("canonical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.MarshalStored(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := storedEvent{
				ID: e.ID, Type: e.Type, Dossier: e.Dossier, Unit: e.Unit, At: e.At.UTC(),
				Procedure: e.Procedure, Channel: e.Channel, Due: e.Due.UTC().Format(time.RFC3339Nano), Days: e.Days,
				Version: e.Version, RecordedAt: e.RecordedAt.UTC(),
			}
			if _, err := json.Marshal(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzLedgerEntryDossier checks that LedgerEntry.Dossier names the dossier
// that decoding the whole event names, wherever the event decodes.
func FuzzLedgerEntryDossier(f *testing.F) {
	at := time.Date(2024, 3, 5, 1, 2, 3, 0, time.UTC)
	for _, e := range []*Event{
		{ID: "a-1", Type: EventReceived, Dossier: "D-1", Unit: "00127", At: at, Procedure: "1.001776",
			Channel: ChannelOnline, Due: at.Add(72 * time.Hour), Version: 1, RecordedAt: at},
		{ID: `q"dossier":"x`, Type: EventTransferred, Dossier: "D.2_x", Unit: "004", At: at, ToUnit: "00118", Version: 3, RecordedAt: at},
	} {
		b, err := e.MarshalStored()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a","type":"resolved","dossier":"d","dossier":"e","unit":"01","at":"2024-02-01T00:00:00Z","version":2,"recorded_at":"2024-02-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"a","type":"resolved","dossier" : "d","unit":"01","at":"2024-02-01T00:00:00Z","version":2,"recorded_at":"2024-02-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := LedgerEntry{Seq: 1, Data: data}.Event()
		if err != nil {
			return
		}
		code, err := LedgerEntry{Seq: 1, Data: data}.Dossier()
		if err != nil || code != e.Dossier {
			t.Fatalf("%q: Dossier() = %q, %v; the decoded event's is %q", data, code, err, e.Dossier)
		}
	})
}
