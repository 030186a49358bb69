package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hoso-ledger/hoso"
	"pgregory.net/rapid"
)

const (
	receivedD1   = `{"id":"e1","type":"received","dossier":"D1","unit":"004","at":"2024-03-01T09:30:00+07:00","procedure":"1.001","channel":"direct","days":3}`
	receivedD2   = `{"id":"e2","type":"received","dossier":"D2","unit":"004","at":"2024-03-01T10:00:00+07:00","procedure":"1.001","channel":"online","days":5}`
	transferD2   = `{"id":"e3","type":"transferred","dossier":"D2","unit":"004","at":"2024-03-01T11:00:00+07:00","to_unit":"005"}`
	unknownType  = `{"id":"e4","type":"teleported","dossier":"D2","unit":"004","at":"2024-03-01T11:30:00+07:00"}`
	resolveD2    = `{"id":"e5","type":"resolved","dossier":"D2","unit":"005","at":"2024-03-01T12:00:00+07:00"}`
	resolveNoDos = `{"id":"e6","type":"resolved","dossier":"NEVER","unit":"005","at":"2024-03-01T12:00:00+07:00"}`
)

func TestPostSingleEvent(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        hoso.AppendResult
		code        string
		field       string
		message     string
	}{
		{name: "received", contentType: "application/json", body: receivedD1, status: 201,
			want: hoso.AppendResult{Dossier: "D1", Version: 1, Seq: 1}},
		{name: "charset utf-8 allowed", contentType: "application/json; charset=UTF-8", body: receivedD1, status: 201,
			want: hoso.AppendResult{Dossier: "D1", Version: 1, Seq: 1}},
		{name: "missing content type is JSON", body: receivedD1, status: 201,
			want: hoso.AppendResult{Dossier: "D1", Version: 1, Seq: 1}},
		{name: "one NDJSON line answers a batch", contentType: "application/x-ndjson", body: receivedD1 + "\n", status: 200},
		{name: "text/plain", contentType: "text/plain", body: receivedD1, status: 415, code: hoso.EUNSUPPORTED, message: "text/plain"},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: "a=b", status: 415, code: hoso.EUNSUPPORTED},
		{name: "other charset", contentType: "application/json; charset=latin1", body: receivedD1, status: 415, code: hoso.EUNSUPPORTED, message: "latin1"},
		{name: "unreadable content type", contentType: "application/json; =", body: receivedD1, status: 415, code: hoso.EUNSUPPORTED},
		{name: "malformed JSON", contentType: "application/json", body: `{"id":"e1",`, status: 400, code: hoso.EINVALID, message: "malformed"},
		{name: "not JSON at all", contentType: "application/json", body: `hello`, status: 400, code: hoso.EINVALID, message: "malformed"},
		{name: "empty body", contentType: "application/json", body: "  ", status: 400, code: hoso.EINVALID, message: "empty"},
		{name: "unknown field", contentType: "application/json", body: strings.Replace(receivedD1, `"id"`, `"colour":"red","id"`, 1),
			status: 400, code: hoso.EINVALID, field: "colour", message: "colour"},
		{name: "bad type", contentType: "application/json", body: unknownType, status: 400, code: hoso.EINVALID, field: "type", message: "teleported"},
		{name: "unknown dossier", contentType: "application/json", body: resolveNoDos, status: 404, code: hoso.ENOTFOUND, message: "NEVER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := newTestServer(t)
			w := serve(t, s.Handler(), "POST", "/v1/events", tt.contentType, tt.body)
			switch {
			case tt.code != "":
				d := errorAnswer(t, w, tt.status, tt.code)
				if d.Field != tt.field {
					t.Errorf("field = %q, want %q", d.Field, tt.field)
				}
				if !strings.Contains(d.Message, tt.message) {
					t.Errorf("message %q does not say %q", d.Message, tt.message)
				}
			case tt.status == 200:
				got := decode[hoso.BatchAnswer](t, w, 200)
				if len(got.Results) != 1 || got.Results[0].AppendResult == nil || got.Results[0].Seq != 1 {
					t.Errorf("batch answer = %+v", got)
				}
			default:
				if got := decode[hoso.AppendResult](t, w, tt.status); got != tt.want {
					t.Errorf("result = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestPostSameEventTwice(t *testing.T) {
	s, _, _ := newTestServer(t)
	first := decode[hoso.AppendResult](t, serve(t, s.Handler(), "POST", "/v1/events", "application/json", receivedD1), 201)
	again := decode[hoso.AppendResult](t, serve(t, s.Handler(), "POST", "/v1/events", "application/json", receivedD1), 201)
	want := first
	want.Duplicate = true
	if first.Duplicate || again != want {
		t.Fatalf("first %+v, again %+v; want the original result with duplicate", first, again)
	}

	// The same id for another event is a conflict, not a duplicate.
	reused := strings.Replace(receivedD1, `"days":3`, `"days":4`, 1)
	errorAnswer(t, serve(t, s.Handler(), "POST", "/v1/events", "application/json", reused), 409, hoso.ECONFLICT)
}

func TestPostBatch(t *testing.T) {
	type item struct {
		seq     uint64 // 0: an error is expected
		version int
		code    string
		field   string
		message string
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		want        []item
	}{
		{
			name:        "JSON array with a bad item",
			contentType: "application/json",
			body:        "[" + strings.Join([]string{receivedD2, unknownType, transferD2, resolveNoDos, resolveD2}, ",") + "]",
			want: []item{
				{seq: 1, version: 1},
				{code: hoso.EINVALID, field: "type", message: "teleported"},
				{seq: 2, version: 2},
				{code: hoso.ENOTFOUND, message: "NEVER"},
				{seq: 3, version: 3},
			},
		},
		{
			name:        "NDJSON with a malformed line in the middle",
			contentType: "application/x-ndjson",
			body:        receivedD2 + "\n" + `{"id":"e9","type":` + "\n\n" + transferD2 + "\n",
			want: []item{
				{seq: 1, version: 1},
				{code: hoso.EINVALID, message: "malformed"},
				{seq: 2, version: 2},
			},
		},
		{
			name:        "concatenated objects without the NDJSON type",
			contentType: "application/json",
			body:        receivedD2 + "\n" + transferD2,
			want:        []item{{seq: 1, version: 1}, {seq: 2, version: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := newTestServer(t)
			got := decode[hoso.BatchAnswer](t, serve(t, s.Handler(), "POST", "/v1/events", tt.contentType, tt.body), 200)
			if len(got.Results) != len(tt.want) {
				t.Fatalf("%d results, want %d: %+v", len(got.Results), len(tt.want), got.Results)
			}
			for i, want := range tt.want {
				r := got.Results[i]
				if want.seq == 0 {
					if r.Error == nil || r.AppendResult != nil {
						t.Errorf("result %d = %+v, want only an error", i, r)
						continue
					}
					if r.Error.Code != want.code || r.Error.Field != want.field || !strings.Contains(r.Error.Message, want.message) {
						t.Errorf("result %d error = %+v, want code %s field %q message with %q", i, *r.Error, want.code, want.field, want.message)
					}
					continue
				}
				if r.Error != nil || r.AppendResult == nil {
					t.Errorf("result %d = %+v, want a result", i, r)
					continue
				}
				if r.Seq != want.seq || r.Version != want.version || r.Dossier != "D2" || r.Duplicate {
					t.Errorf("result %d = %+v, want seq %d version %d of D2", i, *r.AppendResult, want.seq, want.version)
				}
			}
		})
	}
}

func TestPostTooLarge(t *testing.T) {
	tests := []struct {
		name          string
		contentLength int64 // -1: unknown length, read until the limit trips
	}{
		{"declared length", int64(len(receivedD1))},
		{"chunked", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ledger, _ := newTestServer(t)
			s.MaxBodyBytes = 64
			req := authedRequest("POST", "/v1/events", strings.NewReader(receivedD1))
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = tt.contentLength
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			d := errorAnswer(t, w, http.StatusRequestEntityTooLarge, hoso.ETOOLARGE)
			if !strings.Contains(d.Message, "64 bytes") {
				t.Errorf("message %q does not name the limit", d.Message)
			}
			if ledger.seq != 0 {
				t.Errorf("%d events appended from a refused body", ledger.seq)
			}
		})
	}

	t.Run("at the limit is accepted", func(t *testing.T) {
		s, _, _ := newTestServer(t)
		s.MaxBodyBytes = int64(len(receivedD1))
		decode[hoso.AppendResult](t, serve(t, s.Handler(), "POST", "/v1/events", "application/json", receivedD1), 201)
	})
	t.Run("default limit is named in MiB", func(t *testing.T) {
		s, _, _ := newTestServer(t)
		req := authedRequest("POST", "/v1/events", strings.NewReader("[]"))
		req.ContentLength = 17 << 20
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if d := errorAnswer(t, w, 413, hoso.ETOOLARGE); !strings.Contains(d.Message, "16 MiB") {
			t.Errorf("message %q does not name the 16 MiB limit", d.Message)
		}
	})
}

// TestPostAnyBody checks that no body, however broken, makes the door fail
// internally or answer anything but the JSON of its contract.
func TestPostAnyBody(t *testing.T) {
	pieces := []string{receivedD1, receivedD2, transferD2, unknownType, resolveD2, resolveNoDos,
		"[", "]", ",", "\n", "{", "}", `"`, `null`, `1`, `{"id":"x"}`, "\x00", "é", " "}
	rapid.Check(t, func(rt *rapid.T) {
		s, _, _ := newTestServer(t)
		body := strings.Join(rapid.SliceOf(rapid.SampledFrom(pieces)).Draw(rt, "pieces"), "")
		contentType := rapid.SampledFrom([]string{"", "application/json", "application/x-ndjson"}).Draw(rt, "contentType")
		req := authedRequest("POST", "/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		switch w.Code {
		case 200, 201, 400, 404, 409:
		default:
			rt.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			rt.Fatalf("Content-Type = %q", ct)
		}
		if !json.Valid(w.Body.Bytes()) {
			rt.Fatalf("answer is not JSON: %s", w.Body)
		}
	})
}

// TestPostEventsHeaders: a submission's answer, which only a program
// holding a token can get, carries the transport headers alone; its
// refusals, which a cross-site form can cause and a browser then shows,
// carry every header of the pages.
func TestPostEventsHeaders(t *testing.T) {
	s, _, _ := newTestServer(t)
	page := []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"}

	w := serve(t, s.Handler(), "POST", "/v1/events", "application/json", receivedD1)
	if w.Code != http.StatusCreated || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("accepted: %d, nosniff %q", w.Code, w.Header().Get("X-Content-Type-Options"))
	}
	for _, h := range page {
		if v := w.Header().Get(h); v != "" {
			t.Errorf("accepted submission: %s = %q, want none", h, v)
		}
	}

	for name, req := range map[string]*http.Request{
		"no token":       httptest.NewRequest("POST", "/v1/events", strings.NewReader(receivedD1)),
		"refused as bad": httptest.NewRequest("POST", "/v1/events", strings.NewReader(`{"type":"nope"}`)),
	} {
		if name == "refused as bad" {
			req.Header.Set("Authorization", authHeader("POST", "/v1/events"))
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code < 400 {
			t.Fatalf("%s: %d, want a refusal", name, w.Code)
		}
		for _, h := range append(page, "X-Content-Type-Options") {
			if w.Header().Get(h) == "" {
				t.Errorf("%s (%d): no %s", name, w.Code, h)
			}
		}
	}
}
