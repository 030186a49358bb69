package handlers

import (
	"net/http"

	"github.com/hoso-ledger/hoso"
)

// errIngestOnly answers every read route of a process that serves ingest
// only: it keeps no read model, so the reader is sent elsewhere rather than
// told that a dossier or a unit does not exist.
var errIngestOnly = hoso.Errorf(EUNAVAILABLE,
	"this process serves ingest only (POST /v1/events, NATS hoso.ingest) and keeps no read model: send reads to a hoso process that keeps one")

// readRoutes are the routes that read the ledger beside those NewServer
// registers: the read API (MountReads), the dashboard (MountDashboard) and
// the citizens' lookup (MountLookup).
var readRoutes = []string{
	"GET /v1/report", "GET /v1/dossiers", "GET /v1/units/{code}",
	"GET /{$}", "GET /units/{code}", "GET /dossiers/{code}", "GET /static/",
	"GET /v1/lookup/{code}", "GET /tra-cuu", // MountLookup
}

// MountIngestOnly makes this the HTTP door of a process that serves ingest
// only: POST /v1/events, /healthz, /readyz and whatever else is mounted are
// served; every read route (dossiers, reports, units, checkpoints and
// proofs, the dashboard) answers 503 unavailable saying so. It replaces
// MountReads and MountDashboard, which must not be called as well.
func (s *Server) MountIngestOnly() {
	s.ingestOnly = true
	for _, pattern := range readRoutes {
		s.Handle(pattern, Public(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.Error(w, r, errIngestOnly) }))
	}
}

// read guards a read route that NewServer registers: a process that serves
// ingest only answers it with errIngestOnly.
func (s *Server) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.ingestOnly {
			s.Error(w, r, errIngestOnly)
			return
		}
		h(w, r)
	}
}
