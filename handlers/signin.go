package handlers

import (
	"net/http"
	"strings"

	"github.com/hoso-ledger/hoso"
)

// signInPage is what the sign-in page shows.
type signInPage struct {
	Title     string
	Msg       string
	Next      string
	Principal *hoso.Principal
}

// mountSignIn registers the sign-in page and sign-out, public on purpose:
// they are how a browser gets and drops a session. Posts from pages of
// other sites are refused (http.CrossOriginProtection), so no other site
// can sign a browser in or out.
func (d *dashboard) mountSignIn() {
	s := d.server
	s.signIn = true
	csrf := http.NewCrossOriginProtection()
	s.Handle("GET /sign-in", Public(), http.HandlerFunc(d.handleSignInPage))
	s.Handle("POST /sign-in", Public(), csrf.Handler(http.HandlerFunc(d.handleSignIn)))
	s.Handle("POST /sign-out", Public(), csrf.Handler(http.HandlerFunc(d.handleSignOut)))
}

func (d *dashboard) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	page := signInPage{Title: "Đăng nhập", Next: localPath(r.URL.Query().Get("next"))}
	if c, err := r.Cookie(SessionCookie); err == nil && d.server.Tokens != nil {
		if p, err := d.server.Tokens.Authenticate(r.Context(), c.Value); err == nil {
			page.Principal, page.Title = p, "Phiên đăng nhập"
		}
	}
	d.render(w, r, http.StatusOK, "signin", page)
}

func (d *dashboard) handleSignIn(w http.ResponseWriter, r *http.Request) {
	s := d.server
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	token, next := strings.TrimSpace(r.PostFormValue("token")), localPath(r.PostFormValue("next"))
	page := signInPage{Title: "Đăng nhập", Next: next}
	addr := clientAddr(r)
	if !s.failuresAllowed(addr) {
		w.Header().Set("Retry-After", "3")
		page.Msg = "Quá nhiều lần đăng nhập sai; hãy đợi một lát rồi thử lại."
		d.render(w, r, http.StatusTooManyRequests, "signin", page)
		return
	}
	if s.Tokens == nil {
		d.fail(w, r, hoso.Errorf(EUNAVAILABLE, "this server authenticates no one: it has no token service"))
		return
	}
	p, err := s.Tokens.Authenticate(r.Context(), token)
	if err != nil && hoso.ErrorCode(err) != hoso.EUNAUTHORIZED {
		d.fail(w, r, err)
		return
	}
	if err != nil {
		s.failed(addr)
		s.logger().WarnContext(r.Context(), "sign-in failed", "addr", addr)
		page.Msg = "Mã truy cập không đúng hoặc đã bị thu hồi."
		d.render(w, r, http.StatusUnauthorized, "signin", page)
		return
	}
	if p.Role != hoso.RoleSupervisor && p.Role != hoso.RoleAuditor {
		page.Msg = "Mã này thuộc vai trò " + string(p.Role) + ", không xem được báo cáo: trang này dành cho giám sát viên (supervisor) và kiểm toán viên (auditor)."
		d.render(w, r, http.StatusForbidden, "signin", page)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/",
		HttpOnly: true, Secure: s.TLS, SameSite: http.SameSiteStrictMode,
	})
	s.logger().InfoContext(r.Context(), "signed in", "principal", p.Name, "addr", addr)
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *dashboard) handleSignOut(w http.ResponseWriter, r *http.Request) {
	clearSessionCookie(w, r, d.server.TLS)
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
}

// clearSessionCookie tells the browser to drop its session.
func clearSessionCookie(w http.ResponseWriter, _ *http.Request, tls bool) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: tls, SameSite: http.SameSiteStrictMode,
	})
}

// localPath returns p when it is a path of this server ("/units/004?…"),
// else "": a sign-in never redirects to another site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return ""
	}
	return p
}
