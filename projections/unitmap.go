package projections

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/hoso-ledger/hoso"
)

// A report maps every unit code the aggregates know (units_seen) to where
// it stands on the report's last day: the chain of units that contains it
// and its authority level (placement). Resolving thousands of codes through the registry is
// most of a small report's work, and the answer changes only with the
// registry, the day and units_seen, which only grows: so each DB keeps the
// mapping per (registry, day), with every level's answer, and makes it
// again when units_seen has grown or the file was swapped.

// unitMapsKept bounds the (registry, day) pairs a DB keeps.
const unitMapsKept = 64

type unitMapKey struct {
	units *hoso.Units
	day   int64
}

// unitMap is where each code of units_seen stands on one day.
type unitMap struct {
	gen  uint64 // the file generation (DB.gen) it was made from
	seen int    // and the number of rows of units_seen
	// codes are units_seen; places[i] is where codes[i] stands.
	codes  []string
	places []placement
}

type unitMaps struct {
	mu   sync.Mutex
	maps map[unitMapKey]*unitMap
}

// unitMap returns the mapping of units_seen, as tx sees it, on reg's day.
// The caller holds db.mu shared (db.gen is stable).
func (db *DB) unitMap(ctx context.Context, tx *sql.Tx, reg *resolver) (*unitMap, error) {
	var seen int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM units_seen`).Scan(&seen); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	key := unitMapKey{reg.units, reg.day}
	c := &db.unitMaps
	c.mu.Lock()
	m := c.maps[key]
	c.mu.Unlock()
	if m != nil && m.gen == db.gen && m.seen == seen {
		return m, nil
	}
	m = &unitMap{gen: db.gen}
	rows, err := tx.QueryContext(ctx, `SELECT code FROM units_seen`)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		m.codes = append(m.codes, code)
		m.places = append(m.places, reg.place(code))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	// Rows read in this transaction: its count, not the one read before,
	// which another batch may have grown since.
	m.seen = len(m.codes)
	c.mu.Lock()
	if c.maps == nil || len(c.maps) >= unitMapsKept {
		c.maps = map[unitMapKey]*unitMap{}
	}
	c.maps[key] = m
	c.mu.Unlock()
	return m, nil
}
