package handlers_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hoso-ledger/hoso"
)

func TestGetDossier(t *testing.T) {
	s, _, _ := newTestServer(t)
	for _, body := range []string{receivedD2, transferD2} {
		decode[hoso.AppendResult](t, serve(t, s.Handler(), "POST", "/v1/events", "application/json", body), 201)
	}

	t.Run("found", func(t *testing.T) {
		w := serve(t, s.Handler(), "GET", "/v1/dossiers/D2", "", "")
		var got struct {
			Code           string `json:"code"`
			State          string `json:"state"`
			Owner          string `json:"owner"`
			Version        int    `json:"version"`
			Classification string `json:"classification"`
			Events         []struct {
				Seq  uint64 `json:"seq"`
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"events"`
		}
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET = %d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Code != "D2" || got.State != string(hoso.StateProcessing) || got.Owner != "005" || got.Version != 2 {
			t.Errorf("dossier = %+v", got)
		}
		if got.Classification != string(hoso.ClassInDeadline) {
			t.Errorf("classification = %q, want in_deadline", got.Classification)
		}
		if len(got.Events) != 2 || got.Events[0].Seq != 1 || got.Events[1].ID != "e3" || got.Events[1].Type != "transferred" {
			t.Errorf("events = %+v", got.Events)
		}
	})

	tests := []struct {
		name, path string
		status     int
		code       string
		field      string
	}{
		{"unknown", "/v1/dossiers/NOPE", 404, hoso.ENOTFOUND, ""},
		{"bad code", "/v1/dossiers/-dash-first", 400, hoso.EINVALID, "code"},
		{"code too long", "/v1/dossiers/" + strings.Repeat("x", 65), 400, hoso.EINVALID, "code"},
		{"escaped space", "/v1/dossiers/a%20b", 400, hoso.EINVALID, "code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := errorAnswer(t, serve(t, s.Handler(), "GET", tt.path, "", ""), tt.status, tt.code)
			if d.Field != tt.field {
				t.Errorf("field = %q, want %q", d.Field, tt.field)
			}
		})
	}
}
