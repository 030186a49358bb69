package handlers_test

import (
	"strings"
	"testing"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/handlers"
)

func TestIngestOnly(t *testing.T) {
	s, _, _ := newTestServer(t)
	s.MountIngestOnly()
	h := s.Handler()

	w := serve(t, h, "POST", "/v1/events", "application/json",
		`{"type":"received","dossier":"D1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`)
	if res := decode[hoso.AppendResult](t, w, 201); res.Seq != 1 {
		t.Fatalf("POST answered %+v", res)
	}
	if got := decode[map[string]string](t, serve(t, h, "GET", "/healthz", "", ""), 200); got["status"] != "ok" {
		t.Fatalf("healthz = %v", got)
	}
	// Every read route, even for the dossier just appended, says where the
	// reads are rather than that nothing exists.
	for _, path := range []string{
		"/v1/dossiers/D1", "/v1/dossiers?unit=004", "/v1/report?unit=004&from=2024-03-01&to=2024-03-31",
		"/v1/units/004", "/v1/checkpoint", "/v1/checkpoint/key", "/v1/dossiers/D1/proof",
		"/v1/consistency?from=1&to=2", "/", "/units/004", "/dossiers/D1", "/static/hoso.css",
		"/v1/lookup/D1", "/tra-cuu?ma=D1",
	} {
		d := errorAnswer(t, serve(t, h, "GET", path, "", ""), 503, handlers.EUNAVAILABLE)
		if !strings.Contains(d.Message, "ingest only") {
			t.Errorf("GET %s: message %q does not say the process serves ingest only", path, d.Message)
		}
	}
	// Unknown routes and wrong methods answer as before.
	errorAnswer(t, serve(t, h, "GET", "/v1/nothing", "", ""), 404, hoso.ENOTFOUND)
	errorAnswer(t, serve(t, h, "DELETE", "/v1/dossiers/D1", "", ""), 405, handlers.EMETHODNOTALLOWED)
}
