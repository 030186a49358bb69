package handlers_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The proof routes exist on every server; one running without tamper
// evidence says so instead of answering 404.
func TestProofRoutesWithoutTamperEvidence(t *testing.T) {
	s, _, _ := newTestServer(t)
	for _, path := range []string{"/v1/checkpoint", "/v1/checkpoint/key", "/v1/dossiers/A-1/proof", "/v1/consistency?from=1&to=2"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, authedRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(string(body), "without tamper evidence") {
			t.Errorf("GET %s: %d %s", path, rec.Code, body)
		}
	}
}
