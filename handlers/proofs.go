package handlers

import (
	"net/http"
	"strconv"

	"github.com/hoso-ledger/hoso"
)

// proofs returns the proof service, or answers 503 when the ledger runs
// without tamper evidence.
func (s *Server) proofs(w http.ResponseWriter, r *http.Request) hoso.ProofService {
	if s.Proofs == nil {
		s.Error(w, r, hoso.Errorf(EUNAVAILABLE, "this ledger runs without tamper evidence (no Merkle tree, no checkpoints)"))
	}
	return s.Proofs
}

// handleCheckpoint answers the latest signed checkpoint; with
// ?format=note, the bare signed note as text.
func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	p := s.proofs(w, r)
	if p == nil {
		return
	}
	cp, err := p.LatestCheckpoint(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		s.writeJSON(w, r, http.StatusOK, cp)
	case "note":
		writeText(w, cp.Note)
	default:
		s.Error(w, r, hoso.FieldErrorf("format", "want json or note, got %q", f))
	}
}

// handleCheckpointKey answers the checkpoints' verifier key as one line of
// text, so that `curl … > ledger.pub` saves what hoso verify --key takes.
func (s *Server) handleCheckpointKey(w http.ResponseWriter, r *http.Request) {
	p := s.proofs(w, r)
	if p == nil {
		return
	}
	writeText(w, p.VerifierKey()+"\n")
}

// handleDossierProof answers every event of a dossier with its inclusion
// proof to the latest checkpoint.
func (s *Server) handleDossierProof(w http.ResponseWriter, r *http.Request) {
	p := s.proofs(w, r)
	if p == nil {
		return
	}
	code := r.PathValue("code")
	if !hoso.ValidDossierCode(code) {
		s.Error(w, r, hoso.FieldErrorf("code", "%q is not a dossier code (1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)", code))
		return
	}
	// An auditor proves only dossiers of its scope: the proof carries
	// every event's bytes.
	if _, err := s.scoped().dossiers().FindDossier(r.Context(), code); err != nil {
		s.Error(w, r, err)
		return
	}
	proof, err := p.DossierProof(r.Context(), code)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, proof)
}

// handleConsistency answers the proof that tree size to extends size from.
func (s *Server) handleConsistency(w http.ResponseWriter, r *http.Request) {
	p := s.proofs(w, r)
	if p == nil {
		return
	}
	q := r.URL.Query()
	var sizes [2]uint64
	for i, name := range []string{"from", "to"} {
		v := q.Get(name)
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.Error(w, r, hoso.FieldErrorf(name, "want a tree size (a whole number), got %q", v))
			return
		}
		sizes[i] = n
	}
	proof, err := p.ConsistencyProof(r.Context(), sizes[0], sizes[1])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, proof)
}

func writeText(w http.ResponseWriter, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(text))
}
