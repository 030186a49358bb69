// Package metrics is hoso's Prometheus instrumentation: the registry a
// process owns (with the Go and process collectors), the counters and the
// latency histogram of the ingest service, the HTTP request histogram, and
// the /metrics handler. The read model's gauges, read from SQLite at scrape
// time, are projections.Collector, registered on the same registry.
package metrics
