package main

import (
	"github.com/hoso-ledger/hoso/handlers"
	"github.com/hoso-ledger/hoso/projections"
)

// mountDashboard serves the supervisors' pages (/, /units/{code},
// /dossiers/{code}) from the same services as the read API.
func (m *Main) mountDashboard() error {
	reads := &projections.Reads{DB: m.DB, Units: m.Units, Calendar: m.Calendar, Now: m.Now, DueSoon: m.Config.DueSoon}
	return m.HTTP.MountDashboard(handlers.Dashboard{
		Reports: reads, Lister: reads, Units: reads, Dossiers: m.HTTP.Dossiers,
		Registry: m.Units, Now: m.Now,
	})
}
