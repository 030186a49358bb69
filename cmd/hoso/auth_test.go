package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
)

// The tests' principals: national, so that any unit's events and reads
// are in scope.
var (
	testDesk    = hoso.Principal{Name: "test-desk", Role: hoso.RoleDesk}
	testAuditor = hoso.Principal{Name: "test-auditor", Role: hoso.RoleAuditor}
)

type tokenKey struct {
	m    *Main
	name string
}

// testTokens holds each Main's tokens made by tokenOf.
var testTokens sync.Map

// tokenOf returns p's token on m's deployment, making p the first time.
func tokenOf(t testing.TB, m *Main, p hoso.Principal) string {
	t.Helper()
	if tok, ok := testTokens.Load(tokenKey{m, p.Name}); ok {
		return tok.(string)
	}
	tok, err := m.Tokens.CreateToken(context.Background(), p)
	if hoso.ErrorCode(err) == hoso.ECONFLICT {
		// Made for an earlier Main of the same deployment (a restart, or
		// another process): a name is never made twice, so its token is
		// one tokenOf gave before.
		err = fmt.Errorf("%s exists, made by no earlier tokenOf of this deployment", p.Name)
		testTokens.Range(func(k, v any) bool {
			if k.(tokenKey).name != p.Name {
				return true
			}
			if got, aerr := m.Tokens.Authenticate(context.Background(), v.(string)); aerr == nil && *got == p {
				tok, err = v.(string), nil
				return false
			}
			return true
		})
	}
	if err != nil {
		t.Fatalf("token of %s: %v", p.Name, err)
	}
	testTokens.Store(tokenKey{m, p.Name}, tok)
	return tok
}

// tokenFileOf writes p's token to a file for the commands' --token-file.
func tokenFileOf(t testing.TB, m *Main, p hoso.Principal) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), p.Name+".token")
	if err := os.WriteFile(path, []byte(tokenOf(t, m, p)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// request sends one request to m's HTTP door with token ("" for none).
func request(t testing.TB, m *Main, method, path, token, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, m.HTTP.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// get reads path as the national auditor, who may read every route but
// the admin's.
func get(t testing.TB, m *Main, path string) (int, []byte) {
	t.Helper()
	return request(t, m, http.MethodGet, path, tokenOf(t, m, testAuditor), "", "")
}

// TestRoutesByRole: every route of the running binary, for every kind of
// caller, answers as docs/security.md says. A route added without a line
// here fails the test.
func TestRoutesByRole(t *testing.T) {
	m := NewMain()
	m.Config.AuthFailureBurst = 1000 // the revoked caller fails on every route
	m.Config.LookupBurst = 1000      // every caller looks the dossier up
	openMainWith(t, m, filepath.Join(t.TempDir(), "data"))
	const dossier = "000.00.31.H26-240304-0009"
	event := `{"type":"received","dossier":"` + dossier + `","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`
	if code, b := request(t, m, "POST", "/v1/events", tokenOf(t, m, testDesk), "application/json", event); code != http.StatusCreated {
		t.Fatalf("seed event: %d %s", code, b)
	}
	waitReady(t, m)

	callers := []struct {
		name string
		p    *hoso.Principal // nil: no token
	}{
		{"none", nil},
		{"desk-in", &hoso.Principal{Name: "desk-00127", Role: hoso.RoleDesk, Unit: "00127"}},
		{"desk-out", &hoso.Principal{Name: "desk-00115", Role: hoso.RoleDesk, Unit: "00115"}},
		{"supervisor-in", &hoso.Principal{Name: "sup-004", Role: hoso.RoleSupervisor, Unit: "004"}},
		{"supervisor-out", &hoso.Principal{Name: "sup-00115", Role: hoso.RoleSupervisor, Unit: "00115"}},
		{"auditor", &hoso.Principal{Name: "aud-004", Role: hoso.RoleAuditor, Unit: "004"}},
		{"admin", &hoso.Principal{Name: "admin-2", Role: hoso.RoleAdmin}},
		{"revoked", &hoso.Principal{Name: "sup-revoked", Role: hoso.RoleSupervisor, Unit: "004"}},
	}
	tokens := map[string]string{}
	for _, c := range callers {
		if c.p != nil {
			tokens[c.name] = tokenOf(t, m, *c.p)
		}
	}
	if err := m.Tokens.Revoke(context.Background(), "sup-revoked"); err != nil {
		t.Fatal(err)
	}

	// What each kind of route answers each caller: ok (the route's own
	// answer, not 401 or 403), 401 or 403.
	const ok = 0
	public := map[string]int{}
	desk := map[string]int{"none": 401, "desk-in": ok, "desk-out": 403, "supervisor-in": 403, "supervisor-out": 403, "auditor": 403, "admin": 403, "revoked": 401}
	reader := map[string]int{"none": 401, "desk-in": 403, "desk-out": 403, "supervisor-in": ok, "supervisor-out": 403, "auditor": ok, "admin": 403, "revoked": 401}
	auditor := map[string]int{"none": 401, "desk-in": 403, "desk-out": 403, "supervisor-in": 403, "supervisor-out": 403, "auditor": ok, "admin": 403, "revoked": 401}
	signIn := map[string]int{"none": 401, "desk-in": 403, "desk-out": 403, "supervisor-in": ok, "supervisor-out": ok, "auditor": ok, "admin": 403, "revoked": 401}
	admin := map[string]int{"none": 401, "desk-in": 403, "desk-out": 403, "supervisor-in": 403, "supervisor-out": 403, "auditor": 403, "admin": ok, "revoked": 401}
	type call struct {
		method, path, body string
		want               map[string]int
	}
	routes := map[string]call{
		"POST /v1/events":               {"POST", "/v1/events", event, desk},
		"GET /v1/dossiers/{code}":       {"GET", "/v1/dossiers/" + dossier, "", reader},
		"GET /v1/dossiers":              {"GET", "/v1/dossiers?unit=00127", "", reader},
		"GET /v1/report":                {"GET", "/v1/report?unit=00127", "", reader},
		"GET /v1/units/{code}":          {"GET", "/v1/units/00127", "", reader},
		"GET /v1/dossiers/{code}/proof": {"GET", "/v1/dossiers/" + dossier + "/proof", "", auditor},
		"GET /v1/consistency":           {"GET", "/v1/consistency?from=1&to=1", "", auditor},
		"GET /v1/checkpoint":            {"GET", "/v1/checkpoint", "", public},
		"GET /v1/checkpoint/key":        {"GET", "/v1/checkpoint/key", "", public},
		"GET /v1/lookup/{code}":         {"GET", "/v1/lookup/" + dossier, "", public},
		"GET /tra-cuu":                  {"GET", "/tra-cuu?ma=" + dossier, "", public},
		"GET /healthz":                  {"GET", "/healthz", "", public},
		"GET /readyz":                   {"GET", "/readyz", "", public},
		"GET /metrics":                  {"GET", "/metrics", "", public},
		"GET /{$}":                      {"GET", "/?unit=00127", "", reader},
		"GET /units/{code}":             {"GET", "/units/00127", "", reader},
		"GET /dossiers/{code}":          {"GET", "/dossiers/" + dossier, "", reader},
		"GET /static/":                  {"GET", "/static/dashboard.css", "", public},
		"GET /sign-in":                  {"GET", "/sign-in", "", public},
		"POST /sign-in":                 {"POST", "/sign-in", "", signIn},
		"POST /sign-out":                {"POST", "/sign-out", "", public},
		"GET /v1/tokens":                {"GET", "/v1/tokens", "", admin},
		"POST /v1/tokens":               {"POST", "/v1/tokens", "", admin},
		"DELETE /v1/tokens/{name}":      {"DELETE", "/v1/tokens/victim-", "", admin},
	}
	var patterns []string
	for pattern := range m.HTTP.Routes() {
		patterns = append(patterns, pattern)
	}
	sort.Strings(patterns)
	for _, pattern := range patterns {
		c, listed := routes[pattern]
		if !listed {
			t.Errorf("route %s (%s) is not in this table: add it, with who may use it, here and in docs/security.md", pattern, m.HTTP.Routes()[pattern])
			continue
		}
		for _, caller := range callers {
			path, body := c.path, c.body
			switch pattern {
			case "POST /v1/tokens":
				body = `{"name":"made-by-` + caller.name + `","role":"supervisor","unit":"004"}`
			case "POST /sign-in":
				// The token in the form: the page signs in readers only.
				body = "token=" + tokens[caller.name]
			case "DELETE /v1/tokens/{name}":
				// Each caller aims at a principal of its own, which only the admin removes.
				victim := hoso.Principal{Name: "victim-" + caller.name, Role: hoso.RoleDesk, Unit: "00127"}
				tokenOf(t, m, victim)
				path += caller.name
			}
			contentType := "application/json"
			if pattern == "POST /sign-in" {
				contentType = "application/x-www-form-urlencoded"
			}
			code, b := request(t, m, c.method, path, tokens[caller.name], contentType, body)
			want := c.want[caller.name]
			switch {
			case want == ok && (code == 401 || code == 403 || code >= 500):
				t.Errorf("%s as %s: %d %.200s, want the route's own answer", pattern, caller.name, code, b)
			case want != ok && code != want:
				t.Errorf("%s as %s: %d %.200s, want %d", pattern, caller.name, code, b, want)
			}
		}
	}
	for pattern := range routes {
		if _, ok := m.HTTP.Routes()[pattern]; !ok {
			t.Errorf("the table lists %s, which the server does not serve", pattern)
		}
	}
}

// ingestMsg is a request to the NATS ingest door carrying the national
// desk's token.
func ingestMsg(t testing.TB, m *Main, data []byte) *nats.Msg {
	t.Helper()
	msg := nats.NewMsg(eventstore.IngestSubject)
	msg.Header.Set("Authorization", "Bearer "+tokenOf(t, m, testDesk))
	msg.Data = data
	return msg
}

// TestFirstStartTokens: the first start writes the admin's token, the
// demo's the supervisor's, auditor's and desk's, each 0600 and working
// for its role and scope; a second start makes none anew.
func TestFirstStartTokens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openDemo(t, dir)
	read := func(name string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, info.Mode().Perm())
		}
		token, err := readTokenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	admin, sup, aud, desk := read(AdminTokenFile), read(DemoSupervisorTokenFile), read(DemoAuditorTokenFile), read(DemoDeskTokenFile)
	waitReady(t, m)
	for _, tt := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"admin lists", "GET", "/v1/tokens", admin, "", 200},
		{"supervisor reads Hà Nội", "GET", "/v1/report?unit=01&level=district&from=2024-01-01&to=2024-12-31", sup, "", 200},
		{"supervisor reads no other province", "GET", "/v1/report?unit=79", sup, "", 403},
		{"auditor proves", "GET", "/v1/consistency?from=1&to=1", aud, "", 200},
		{"desk posts for a Long Biên ward", "POST", "/v1/events", desk, `{"type":"received","dossier":"FIRST-1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`, 201},
		{"desk posts for no other district", "POST", "/v1/events", desk, `{"type":"received","dossier":"FIRST-2","unit":"00004","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`, 403},
	} {
		code, b := request(t, m, tt.method, tt.path, tt.token, "application/json", tt.body)
		if code != tt.want {
			t.Errorf("%s: %d %.300s, want %d", tt.name, code, b, tt.want)
		}
		if tt.want == 403 && tt.method == "POST" && !strings.Contains(string(b), `"field":"unit"`) {
			t.Errorf("%s: the refusal does not name unit: %s", tt.name, b)
		}
	}
	// The README's NATS command: the demo desk by its name and token.
	nc, err := nats.Connect(m.Store.ClientURL(), nats.UserInfo(demoDesk.Name, desk))
	if err != nil {
		t.Fatalf("the demo desk on NATS: %v", err)
	}
	reply, err := nc.Request(eventstore.DeskSubject(demoDesk.Name), []byte(`{"type":"transferred","dossier":"FIRST-1","unit":"00127","to_unit":"004","at":"2024-03-04T10:00:00+07:00"}`), 5*time.Second)
	nc.Close()
	if err != nil || !strings.Contains(string(reply.Data), `"version":2`) {
		t.Fatalf("the demo desk's transfer over NATS: %v %s", err, reply.Data)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openDemo(t, dir)
	if read(AdminTokenFile) != admin || read(DemoSupervisorTokenFile) != sup {
		t.Error("a second start wrote new tokens")
	}
	ps, err := m.Tokens.Principals(context.Background())
	if err != nil || len(ps) != 4 {
		t.Errorf("principals after two starts: %v %v, want admin and the demo's three", ps, err)
	}
}

// TestRevocationHoldsInEveryProcess: two processes of one deployment (the
// second an ingest-only process on the first's NATS) share the principals:
// a token made through one works at the other, and revoked through one it
// is refused there at once and by the other as soon as the change reaches
// it, at both doors, a desk's open NATS connection included.
func TestRevocationHoldsInEveryProcess(t *testing.T) {
	a := openMain(t, filepath.Join(t.TempDir(), "a"))
	b := NewMain()
	b.Config.ReadModel = false
	b.Config.NATSURL = a.Store.ClientURL()
	b.Config.NATSCredentials = a.Store.LedgerCredentials()
	openMainWith(t, b, filepath.Join(t.TempDir(), "b"))

	admin, err := readTokenFile(filepath.Join(a.Config.DataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	code, body := request(t, a, "POST", "/v1/tokens", admin, "application/json", `{"name":"desk-viet-hung","role":"desk","unit":"00127"}`)
	var made struct{ Token string }
	if err := json.Unmarshal(body, &made); err != nil || code != http.StatusCreated || made.Token == "" {
		t.Fatalf("make a token: %d %s", code, body)
	}
	event := func(code string) string {
		return `{"type":"received","dossier":"` + code + `","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`
	}
	if code, body := request(t, b, "POST", "/v1/events", made.Token, "application/json", event("REV-1")); code != http.StatusCreated {
		t.Fatalf("the other process: %d %s", code, body)
	}
	// The desk as a NATS user of its own, connected before the revocation:
	// its subject is served by both processes (one queue group).
	desk, err := nats.Connect(a.Store.ClientURL(), nats.UserInfo("desk-viet-hung", made.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer desk.Close()
	if code, body := request(t, a, "DELETE", "/v1/tokens/desk-viet-hung", admin, "", ""); code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", code, body)
	}
	// The revoking process refuses at once; the other as soon as the
	// bucket's watch brings the change. Polled with an event that could
	// never be stored (400 while the token works), so that nothing is
	// stored in between.
	if code, body := request(t, a, "POST", "/v1/events", made.Token, "application/json", event("REV-2")); code != http.StatusUnauthorized {
		t.Fatalf("revoked, the revoking process answered %d %s", code, body)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		code, body := request(t, b, "POST", "/v1/events", made.Token, "application/json", `{}`)
		if code == http.StatusUnauthorized {
			break
		}
		if code != http.StatusBadRequest || time.Now().After(deadline) {
			t.Fatalf("revoked, the other process still answers %d %s", code, body)
		}
	}
	if code, body := request(t, b, "POST", "/v1/events", made.Token, "application/json", event("REV-2")); code != http.StatusUnauthorized {
		t.Fatalf("revoked, the other process answered %d %s", code, body)
	}
	nc, err := nats.Connect(b.Store.ClientURL(), b.Store.LedgerAuth())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg := nats.NewMsg(eventstore.IngestSubject)
	msg.Header.Set("Authorization", "Bearer "+made.Token)
	msg.Data = []byte(event("REV-3"))
	reply, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil || reply.Header.Get("Nats-Service-Error-Code") != "401" {
		t.Fatalf("revoked, over NATS: %v %s (%v)", reply.Header, reply.Data, err)
	}
	// Whichever process answers the open connection's requests refuses them.
	for i := range 20 {
		reply, err := desk.Request(eventstore.DeskSubject("desk-viet-hung"), []byte(event("REV-4-"+strconv.Itoa(i))), 5*time.Second)
		if err != nil || reply.Header.Get("Nats-Service-Error-Code") != "401" {
			t.Fatalf("revoked, on its own subject, request %d: %v %s", i, err, reply.Data)
		}
	}
	if last, err := a.Store.LastSeq(context.Background()); err != nil || last != 1 {
		t.Fatalf("stream holds %d events (%v), want the one before the revocation", last, err)
	}
}

// TestTokenCommandMakesNATSDesks: `hoso token add` prints the new token
// alone on stdout, and a desk's token is at once its NATS credential: the
// desk connects with it, sends to its own subject within its scope, and
// its events carry its name; `hoso token ls` lists it without secrets;
// once revoked it can no longer connect.
func TestTokenCommandMakesNATSDesks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openMain(t, dir)
	admin := filepath.Join(dir, AdminTokenFile)
	api := []string{"--url", m.HTTP.URL(), "--token-file", admin}

	out, stderr, err := runCmd(t, "", append([]string{"token", "add", "--name", "desk-00115", "--role", "desk", "--unit", "00115"}, api...)...)
	if err != nil {
		t.Fatalf("token add: %v\n%s", err, stderr)
	}
	token := strings.TrimSuffix(out, "\n")
	if !strings.HasPrefix(token, eventstore.TokenPrefix) || strings.ContainsAny(token, " \n") {
		t.Fatalf("token add printed %q, want the token alone", out)
	}
	if !strings.Contains(stderr, eventstore.DeskSubject("desk-00115")) {
		t.Errorf("token add does not say the desk's NATS subject: %s", stderr)
	}

	nc, err := nats.Connect(m.Store.ClientURL(), nats.UserInfo("desk-00115", token))
	if err != nil {
		t.Fatalf("the desk's token is no NATS credential: %v", err)
	}
	defer nc.Close()
	event := `{"type":"received","dossier":"CLI-1","unit":"00115","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`
	reply, err := nc.Request(eventstore.DeskSubject("desk-00115"), []byte(event), 5*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), `"seq":`) {
		t.Fatalf("desk over NATS: %v %s", err, reply.Data)
	}
	reply, err = nc.Request(eventstore.DeskSubject("desk-00115"), []byte(strings.ReplaceAll(event, "00115", "00127")), 5*time.Second)
	if err != nil || reply.Header.Get("Nats-Service-Error-Code") != "403" {
		t.Fatalf("desk over NATS out of its scope: %v %s, want 403", err, reply.Data)
	}
	evs, err := m.Store.LoadDossier(context.Background(), "CLI-1")
	if err != nil || len(evs) != 1 || evs[0].By != "desk-00115" {
		t.Fatalf("stored %v (%v), want one event by desk-00115", evs, err)
	}

	out, _, err = runCmd(t, "", append([]string{"token", "ls"}, api...)...)
	if err != nil || !strings.Contains(out, "desk-00115") || strings.Contains(out, token) {
		t.Fatalf("token ls: %v\n%s", err, out)
	}
	if _, stderr, err := runCmd(t, "", append([]string{"token", "revoke", "--name", "desk-00115"}, api...)...); err != nil {
		t.Fatalf("token revoke: %v\n%s", err, stderr)
	}
	if nc2, err := nats.Connect(m.Store.ClientURL(), nats.UserInfo("desk-00115", token), nats.MaxReconnects(0)); err == nil {
		nc2.Close()
		t.Fatal("a revoked desk connected to NATS")
	}
	reply, err = nc.Request(eventstore.DeskSubject("desk-00115"), []byte(strings.Replace(event, "CLI-1", "CLI-2", 1)), 5*time.Second)
	if err == nil && reply.Header.Get("Nats-Service-Error-Code") != "401" {
		t.Fatalf("a revoked desk's open connection: %s, want 401", reply.Data)
	}
	if _, stderr, err := runCmd(t, "", append([]string{"token", "add", "--name", "desk-00115", "--role", "desk", "--unit", "00127"}, api...)...); err == nil {
		t.Fatal("token add gave a revoked name again")
	} else if !strings.Contains(stderr+err.Error(), "never given twice") {
		t.Errorf("re-adding a revoked name: %v %s", err, stderr)
	}
}
