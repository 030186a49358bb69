package hoso

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"testing"
)

// FuzzDecodePlain checks DecodeEvent's plain path against encoding/json:
// where the plain path reads an input, encoding/json reads the same event
// or refuses it with the same error; and the usual events take the plain
// path.
func FuzzDecodePlain(f *testing.F) {
	plain := []string{
		`{"type":"received","dossier":"000.00.31.H26-200105-0001","unit":"00127","at":"2020-01-05T09:30:00+07:00","procedure":"1.001776","channel":"online","days":15}`,
		` { "id" : "k-1", "type":"transferred","dossier":"A-1","unit":"00127","to_unit":"004","at":"2020-01-06T09:30:00+07:00","expected_version":1 }` + "\n",
		`{"type":"supplement_requested","dossier":"A_1","unit":"004","at":"2020-01-07T10:00:00+07:00","reason":"thiếu bản sao CCCD"}`,
		`{"type":"supplement_received","dossier":"A_1","unit":"004","at":"2020-01-09T10:00:00+07:00","due":"2020-01-20T17:00:00+07:00"}`,
		`{"type":"resolved","dossier":"A1","unit":"004","at":"2020-01-15T16:00:00+07:00","outcome":"rejected","expected_version":-1}`,
		`{"type":"received","dossier":"A1","unit":"00127","at":"2020-01-05T09:30:00+07:00","procedure":"p","channel":"direct","days":1e400}`,
		`{"type":"received","dossier":"A1","unit":"00127","at":"2020-01-05T09:30:00+07:00","procedure":"p","channel":"direct","days":0.125,"expected_version":2.0}`,
		`{}`,
	}
	for _, s := range plain {
		var w wireEvent
		if !w.decodePlain([]byte(s)) {
			f.Fatalf("plain path refused %s", s)
		}
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"type":"received","Dossier":"A1"}`, `{"type":"x","type":"y"}`, `{"type":"a\"b"}`, `{"days":"3"}`,
		`{"days":01}`, `{"at":null}`, `{"type":"x"} {}`, `{"type":"x",}`, `[]`, `null`, "{\"type\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	codeRE := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := ValidDossierCode(string(data)), codeRE.Match(data); got != want {
			t.Fatalf("ValidDossierCode(%q) = %v, the pattern says %v", data, got, want)
		}
		var w wireEvent
		if !w.decodePlain(data) {
			return
		}
		plainEvent, plainErr := w.event()
		jsonEvent, jsonErr := decodeEventJSON(data)
		if !reflect.DeepEqual(plainEvent, jsonEvent) || !reflect.DeepEqual(plainErr, jsonErr) {
			t.Fatalf("%q:\nplain %+v (%v)\njson  %+v (%v)", data, plainEvent, plainErr, jsonEvent, jsonErr)
		}
	})
}

// FuzzAppendBatchAnswer checks that AppendBatchAnswer writes what
// encoding/json writes of NewBatchAnswer.
func FuzzAppendBatchAnswer(f *testing.F) {
	f.Add("A-1", 3, uint64(17), true, "", "", "")
	f.Add("", 0, uint64(0), false, EINVALID, `days: must be a number, got "3" <&> `+"\u2028\xff", "days")
	f.Add("", 0, uint64(0), false, "", "boom", "")
	f.Fuzz(func(t *testing.T, dossier string, version int, seq uint64, duplicate bool, code, message, field string) {
		results := []BatchResult{{Result: AppendResult{Dossier: dossier, Version: version, Seq: seq, Duplicate: duplicate}}}
		switch {
		case code != "":
			results = append(results, BatchResult{Err: &Error{Code: code, Message: message, Field: field}})
		case message != "":
			results = append(results, BatchResult{Err: errors.New(message)}) // an internal error
		}
		want, err := json.Marshal(NewBatchAnswer(results))
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendBatchAnswer(nil, results); string(got) != string(want) {
			t.Fatalf("AppendBatchAnswer\n%s\nencoding/json\n%s", got, want)
		}
		want, _ = json.Marshal(results[0].Result)
		if got := results[0].Result.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON %s, encoding/json %s", got, want)
		}
	})
}

// BenchmarkDecodeEvent compares DecodeEvent's plain path with
// encoding/json on a typical event as desk systems send it.
func BenchmarkDecodeEvent(b *testing.B) {
	data := []byte(`{"id":"000.00.31.H26-240305-0001-1","type":"received","dossier":"000.00.31.H26-240305-0001","unit":"00127","at":"2024-03-05T08:02:03+07:00","procedure":"1.001776.000.00.00.H26","channel":"online","days":5}`)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeEvent(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeEventJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendBatchAnswer compares the hand-written answer to a batch of
// 1,000 events with encoding/json's.
func BenchmarkAppendBatchAnswer(b *testing.B) {
	results := make([]BatchResult, 1000)
	for i := range results {
		results[i].Result = AppendResult{Dossier: fmt.Sprintf("000.00.31.H26-240305-%04d", i), Version: 1, Seq: uint64(100_000 + i)}
	}
	b.Run("by-hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			AppendBatchAnswer(make([]byte, 0, 96*len(results)+16), results) // sized as the doors size it
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(NewBatchAnswer(results)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
