package main

import (
	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/projections"
)

// mountDashboard serves the supervisors' pages (/, /units/{code},
// /dossiers/{code}) from the same services as the read API, and the
// citizens' lookup (/tra-cuu, /v1/lookup/{code}) beside them.
func (m *Main) mountDashboard() error {
	reads := &projections.Reads{DB: m.DB, Units: m.Units, Calendar: m.Calendar, Now: m.Now, DueSoon: m.Config.DueSoon}
	if err := m.HTTP.MountDashboard(handlers.Dashboard{
		Reports: reads, Lister: reads, Units: reads, Dossiers: m.HTTP.Dossiers,
		Registry: m.Units, Now: m.Now,
	}); err != nil {
		return err
	}
	return m.HTTP.MountLookup(handlers.Lookup{
		Dossiers: m.HTTP.Dossiers, Registry: m.Units, Now: m.Now, Burst: m.Config.LookupBurst,
	})
}
