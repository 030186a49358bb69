package handlers

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
)

// Access says who may use a route: anyone (Public, on purpose), or an
// authenticated principal of one of the roles.
type Access struct {
	public bool
	roles  []hoso.Role
}

// Public lets anyone use a route. Every public route is listed in
// docs/security.md with the reason it is public.
func Public() Access { return Access{public: true} }

// Allow lets principals of these roles use a route; the handler or the
// service behind it then checks their scope.
func Allow(roles ...hoso.Role) Access { return Access{roles: roles} }

// Readers are the roles that read reports, dossiers and units.
var Readers = Allow(hoso.RoleSupervisor, hoso.RoleAuditor)

func (a Access) String() string {
	if a.public {
		return "public"
	}
	names := make([]string, len(a.roles))
	for i, r := range a.roles {
		names[i] = string(r)
	}
	return strings.Join(names, ",")
}

// SessionCookie holds a signed-in browser's bearer token (HttpOnly,
// SameSite=Strict). It authenticates safe methods only: a request that
// changes something must carry the Authorization header, which a page of
// another site cannot make a browser send, so no form elsewhere can act
// with a signed-in user's rights.
const SessionCookie = "hoso_session"

// Failed authentications an address may make: a burst, then one every
// failureEvery; past that its requests answer 429 until it slows down.
const (
	DefaultAuthFailureBurst = 20
	failureEvery            = 3 * time.Second
)

// clientAddr is the request's peer address without its port. A proxy in
// front would make every client one address: docs/security.md says to
// rate-limit there.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bearerToken returns the request's token: the Authorization header's, or
// for a safe method the session cookie's. ok is false when there is none.
func bearerToken(r *http.Request) (token string, fromCookie, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return "", false, true // present but not a bearer token: a failure, not an absence
		}
		return strings.TrimSpace(token), false, true
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			return c.Value, true, true
		}
	}
	return "", false, false
}

// authorize runs before every routed handler: it lets a public route
// through, and otherwise authenticates the request and checks the role,
// answering 401, 403 or 429 itself. It returns the request to serve, with
// the principal in its context, or nil when it has answered.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, pattern string) *http.Request {
	access, ok := s.access[pattern]
	if !ok {
		// A route without a rule is a bug; refusing it keeps the bug closed.
		s.Error(w, r, hoso.Errorf(hoso.EINTERNAL, "route %s has no access rule", pattern))
		return nil
	}
	if access.public {
		return r
	}
	if s.Tokens == nil {
		s.Error(w, r, hoso.Errorf(EUNAVAILABLE, "this server authenticates no one: it has no token service"))
		return nil
	}
	addr := clientAddr(r)
	if !s.failuresAllowed(addr) {
		w.Header().Set("Retry-After", "3")
		s.Error(w, r, hoso.Errorf(ETOOMANYREQUESTS, "too many failed authentications from %s; wait and retry", addr))
		return nil
	}
	token, fromCookie, present := bearerToken(r)
	if !present {
		if s.signInRedirect(w, r) {
			return nil
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="hoso"`)
		s.Error(w, r, hoso.Errorf(hoso.EUNAUTHORIZED, "%s needs a bearer token: Authorization: Bearer <token>", pattern))
		return nil
	}
	p, err := s.Tokens.Authenticate(r.Context(), token)
	if err != nil {
		if hoso.ErrorCode(err) != hoso.EUNAUTHORIZED {
			s.Error(w, r, err)
			return nil
		}
		s.failed(addr)
		s.logger().WarnContext(r.Context(), "authentication failed", "addr", addr, "route", pattern, "cookie", fromCookie)
		if fromCookie {
			clearSessionCookie(w, r, s.TLS)
			if s.signInRedirect(w, r) {
				return nil
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="hoso", error="invalid_token"`)
		s.Error(w, r, err)
		return nil
	}
	if !slices.Contains(access.roles, p.Role) {
		s.Error(w, r, hoso.Errorf(hoso.EFORBIDDEN, "%s is for the %s role, not %s", pattern, access, p))
		return nil
	}
	return r.WithContext(hoso.NewContextWithPrincipal(r.Context(), p))
}

// failuresAllowed reports whether addr may try to authenticate now.
func (s *Server) failuresAllowed(addr string) bool {
	return s.failures.ready(addr, time.Now())
}

// failed records a failed authentication of addr.
func (s *Server) failed(addr string) {
	s.failures.take(addr, time.Now(), cmp.Or(s.AuthFailureBurst, DefaultAuthFailureBurst))
}

// signInRedirect sends a browser that asks for a dashboard page without a
// session to the sign-in page, and reports whether it did.
func (s *Server) signInRedirect(w http.ResponseWriter, r *http.Request) bool {
	if !s.signIn || r.Method != http.MethodGet || strings.HasPrefix(r.URL.Path, "/v1/") ||
		!strings.Contains(r.Header.Get("Accept"), "text/html") {
		return false
	}
	http.Redirect(w, r, "/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	return true
}

// principal returns the request's authenticated principal, or an
// EUNAUTHORIZED error when there is none (a service called from a public
// route).
func principal(ctx context.Context) (*hoso.Principal, error) {
	if p := hoso.PrincipalFromContext(ctx); p != nil {
		return p, nil
	}
	return nil, hoso.Errorf(hoso.EUNAUTHORIZED, "not signed in")
}

// setSecurityHeaders sets what every answer a browser may show carries: no
// framing, no referrer leaving with a dossier code in it, and a content
// policy that allows the dashboard's own style sheet and form and nothing
// else. The values are shared slices, set without copying, and net/http
// only reads them.
func setSecurityHeaders(h http.Header, tls bool) {
	setTransportHeaders(h, tls)
	h["Content-Security-Policy"] = cspValue
	h["X-Frame-Options"] = frameOptionsValue
	h["Referrer-Policy"] = referrerPolicyValue
}

// setTransportHeaders sets what every answer carries, even one no browser
// shows: no content sniffing and, under TLS, HSTS.
func setTransportHeaders(h http.Header, tls bool) {
	h["X-Content-Type-Options"] = nosniffValue
	if tls {
		h["Strict-Transport-Security"] = hstsValue
	}
}

// machineOnly reports whether r's answer, if it succeeds, can reach only a
// program and never a browser's page: a submission of events, which
// succeeds only with an Authorization header that no form, link or frame
// can send. Its answers carry only the transport headers, for it is the
// one answer sent for every single event a desk submits; its refusals,
// which a cross-site form can cause, carry every header (Server.Error).
func machineOnly(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v1/events"
}

var (
	cspValue            = []string{"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}
	frameOptionsValue   = []string{"DENY"}
	referrerPolicyValue = []string{"no-referrer"}
	nosniffValue        = []string{"nosniff"}
	hstsValue           = []string{"max-age=31536000"}
)
