// Package handlers is the HTTP door of the ledger. It owns everything net/http:
// the JSON API (POST /v1/events, GET /v1/dossiers/{code}, /healthz, /readyz),
// request limits and server timeouts, and the one translation of hoso error
// codes to HTTP statuses and JSON error bodies. The read endpoints mount with
// MountReads; the supervisors' dashboard (server-rendered pages, templates and
// stylesheet embedded) with MountDashboard; /metrics through Server.Handle
// and Server.Observe. A process that serves ingest only mounts
// MountIngestOnly instead of the reads and the dashboard.
//
// It depends only on the root package: the ledger reaches it through the
// hoso.EventService and hoso.DossierService interfaces, so tests drive it with
// an in-memory fake and cmd wires in the real services.
package handlers
