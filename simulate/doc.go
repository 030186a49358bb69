// Package simulate owns the traffic generator: realistic, deterministic
// dossier histories for the units of a subtree over a period, in ledger
// order, together with its own counts of what it generated, so that a
// report over the imported history can be checked against them.
//
// It depends only on the domain (units registry, working calendar, the
// dossier state machine); how the events travel (NDJSON, HTTP, NATS, the
// ingest service in process) is the caller's business.
package simulate
