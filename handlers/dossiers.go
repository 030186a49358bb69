package handlers

import (
	"net/http"

	"github.com/hoso-ledger/hoso"
)

// handleGetDossier answers one dossier with its state, due, classification
// and event history.
func (s *Server) handleGetDossier(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if !hoso.ValidDossierCode(code) {
		s.Error(w, r, hoso.FieldErrorf("code", "%q is not a dossier code (1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)", code))
		return
	}
	view, err := s.scoped().dossiers().FindDossier(r.Context(), code)
	if err == nil && view == nil {
		err = hoso.Errorf(hoso.ENOTFOUND, "dossier %q not found", code)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, view)
}
