package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
)

// indexSnapshotFile is where, in the data directory, the dossier index of a
// bucketed stream is kept between starts (eventstore.Config.IndexSnapshot).
const indexSnapshotFile = "dossier-index.snap"

// byteSize is a size flag: 0 (or "off") for none, else a size such as
// 500GiB.
type byteSize int64

func (b *byteSize) String() string {
	if *b == 0 {
		return "0"
	}
	if *b%(1<<30) == 0 {
		return strconv.FormatInt(int64(*b>>30), 10) + "GiB"
	}
	if *b%(1<<20) == 0 {
		return strconv.FormatInt(int64(*b>>20), 10) + "MiB"
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "0", "":
		*b = 0
		return nil
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n > 1<<62 {
		return fmt.Errorf("want 0 or a size such as 500GiB: %q", v)
	}
	*b = byteSize(n)
	return nil
}

// registerStorage exports whether the stream refuses appends for lack of
// space (HosoStreamStorageFull in deploy/prometheus/hoso-alerts.yml).
func (m *Main) registerStorage() {
	store := m.Store
	m.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hoso_stream_storage_full",
		Help: "1 while the stream refuses events for lack of space (its --stream-max-bytes, the server's or the account's storage limit): from the last refusal until an event is stored again; else 0.",
	}, func() float64 {
		if store.StorageFull() {
			return 1
		}
		return 0
	}))
}
