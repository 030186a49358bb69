package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/hoso-ledger/hoso"
)

// tokenRequest is the body of POST /v1/tokens.
type tokenRequest struct {
	Name *string `json:"name"`
	Role *string `json:"role"`
	Unit *string `json:"unit"`
}

// tokenAnswer is the answer to POST /v1/tokens: the only time the token
// is ever shown.
type tokenAnswer struct {
	hoso.Principal
	Token string `json:"token"`
}

func (s *Server) mountTokens() {
	admins := Allow(hoso.RoleAdmin)
	s.Handle("POST /v1/tokens", admins, http.HandlerFunc(s.handleCreateToken))
	s.Handle("GET /v1/tokens", admins, http.HandlerFunc(s.handleListTokens))
	s.Handle("DELETE /v1/tokens/{name}", admins, http.HandlerFunc(s.handleRevokeToken))
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	if err != nil {
		s.Error(w, r, hoso.Errorf(hoso.ETOOLARGE, "a token request is at most 4 KiB"))
		return
	}
	var req tokenRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
			s.Error(w, r, hoso.FieldErrorf(strings.Trim(name, `"`), "unknown field (allowed: name, role, unit)"))
			return
		}
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			s.Error(w, r, hoso.FieldErrorf(typ.Field, "must be a string"))
			return
		}
		s.Error(w, r, hoso.Errorf(hoso.EINVALID, "malformed JSON: %s", msg))
		return
	}
	if req.Name == nil {
		s.Error(w, r, hoso.FieldErrorf("name", "required"))
		return
	}
	if req.Role == nil {
		s.Error(w, r, hoso.FieldErrorf("role", "required: desk, supervisor, auditor or admin"))
		return
	}
	p := hoso.Principal{Name: *req.Name, Role: hoso.Role(*req.Role)}
	if req.Unit != nil {
		p.Unit = *req.Unit
	}
	token, err := s.Tokens.CreateToken(r.Context(), p)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	by := hoso.PrincipalFromContext(r.Context())
	s.logger().InfoContext(r.Context(), "token created", "principal", p.String(), "by", by.Name)
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, r, http.StatusCreated, tokenAnswer{Principal: p, Token: token})
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	if _, err := queryParams(r); err != nil {
		s.Error(w, r, err)
		return
	}
	ps, err := s.Tokens.Principals(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if ps == nil {
		ps = []hoso.Principal{}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"principals": ps})
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.Tokens.Revoke(r.Context(), name); err != nil {
		s.Error(w, r, err)
		return
	}
	by := hoso.PrincipalFromContext(r.Context())
	s.logger().InfoContext(r.Context(), "token revoked", "principal", name, "by", by.Name)
	w.WriteHeader(http.StatusNoContent)
}
