// Package eventstore keeps the ledger in NATS JetStream.
//
// It owns the embedded nats-server (or the connection to an external
// cluster), the HOSO_EVENTS stream and its configuration (deny delete and
// purge, Msg-Id deduplication), the subject encoding of dossier codes,
// appending with per-dossier optimistic concurrency
// (Nats-Expected-Last-Subject-Sequence), loading one dossier's events,
// reading the ledger from a sequence (every follower in the process shares
// one following read of the stream), and the ingest service that both doors
// use: hoso.EventService for HTTP and the NATS micro service hoso.ingest.
package eventstore
