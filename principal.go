package hoso

import (
	"context"
	"fmt"
	"time"
)

// Role is what a principal may do (docs/security.md, "Who may do what").
type Role string

// Roles. A principal has exactly one.
const (
	// RoleDesk appends events for dossiers its scope owns; it reads nothing.
	RoleDesk Role = "desk"
	// RoleSupervisor reads reports, dossiers, units, backlogs, exports and
	// the dashboard of its scope.
	RoleSupervisor Role = "supervisor"
	// RoleAuditor reads what a supervisor of its scope reads, plus proofs.
	RoleAuditor Role = "auditor"
	// RoleAdmin manages principals and nothing else.
	RoleAdmin Role = "admin"
)

// Roles lists every role, in the order the docs give them.
var Roles = []Role{RoleDesk, RoleSupervisor, RoleAuditor, RoleAdmin}

// ParseRole returns the role named s, or an EINVALID error naming "role".
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", FieldErrorf("role", "must be desk, supervisor, auditor or admin, got %q", s)
}

// SystemPrincipal is the name the ledger's own events carry in `by` (the
// deadline watcher's overdue events).
const SystemPrincipal = "hoso"

// Principal is who submits or reads: a name unique in the deployment, a
// role and a scope. The scope is Unit's subtree as the registry stands at
// the moment in question (an event's `at` for writes, a report's `to` for
// reads); an empty Unit is national.
type Principal struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	Unit string `json:"unit"`
}

// National reports whether the principal's scope is the whole country.
func (p *Principal) National() bool { return p.Unit == "" }

// Covers reports whether unit lies in the principal's scope at instant t:
// it is the scope unit itself or one of its descendants then. A national
// principal covers every unit, known or not.
func (p *Principal) Covers(units *Units, unit string, t time.Time) bool {
	if p.Unit == "" {
		return true
	}
	if unit == p.Unit {
		return true
	}
	for _, a := range units.Ancestors(unit, t) {
		if a.Code == p.Unit {
			return true
		}
	}
	return false
}

// CheckScope returns nil if unit lies in the principal's scope at t, else
// an EFORBIDDEN error naming field.
func (p *Principal) CheckScope(units *Units, field, unit string, t time.Time) error {
	if p.Covers(units, unit, t) {
		return nil
	}
	if unit == "" {
		return ForbiddenErrorf(field, "the whole country is outside %s's scope (unit %s)", p.Name, p.Unit)
	}
	return ForbiddenErrorf(field, "unit %s is outside %s's scope (unit %s)", unit, p.Name, p.Unit)
}

func (p *Principal) String() string {
	scope := p.Unit
	if scope == "" {
		scope = "national"
	}
	return fmt.Sprintf("%s (%s, %s)", p.Name, p.Role, scope)
}

type principalKey struct{}

// NewContextWithPrincipal returns ctx carrying p: the doors put the
// authenticated principal there, the services read it.
func NewContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal ctx carries, or nil.
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// TokenService keeps the deployment's principals and their bearer tokens.
// Secrets are shown once, by CreateToken, and stored only as hashes; every
// process of a deployment shares one TokenService's state, so a revocation
// holds everywhere (docs/security.md says how soon).
type TokenService interface {
	// CreateToken adds the principal and returns its new secret token. A
	// name already in use is ECONFLICT.
	CreateToken(ctx context.Context, p Principal) (token string, err error)
	// Authenticate returns the principal whose token this is, or
	// EUNAUTHORIZED for an unknown, malformed or revoked token. It and
	// Principal may return a principal shared with other callers, which
	// none may change.
	Authenticate(ctx context.Context, token string) (*Principal, error)
	// Principal returns the live principal named name, or ENOTFOUND if
	// there is none or it was revoked.
	Principal(ctx context.Context, name string) (*Principal, error)
	// Principals lists every principal, without secrets, by name.
	Principals(ctx context.Context) ([]Principal, error)
	// Revoke removes the principal's token; ENOTFOUND if none. Its name is
	// never given again, since stored events carry it.
	Revoke(ctx context.Context, name string) error
}
