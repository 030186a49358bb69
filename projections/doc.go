// Package projections is hoso's SQLite read model.
//
// It owns the read model's file and schema (goose migrations embedded in
// the binary), the projector that folds the stream HOSO_EVENTS into it in
// batches (each batch and the stream sequence it reaches commit in one
// transaction), the reports of docs/design.md §2 with their CSV, XLSX (the
// official form Biểu II.06a) and text renderings, the dossier listings, the
// backlog the metrics collector reads, and rebuilding the file from the
// stream. Everything in it can be rebuilt from the stream; see
// docs/read-model.md for the tables and the rules that fill them.
//
// Two consumers of the read model live here too: Collector, the
// Prometheus collector that reads the backlog and the projection's
// position at scrape time, and Watcher, the deadline watcher that appends
// overdue events for the dossiers it finds past due.
package projections
