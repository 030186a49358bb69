package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/hoso-ledger/hoso/eventstore"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hoso-ledger/hoso"
)

// readTokenFile returns the bearer token in path: its one line.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("token-file %s: want one token on one line", path)
	}
	return token, nil
}

// bearerTransport sends every request with the token.
type bearerTransport struct {
	token string
	next  http.RoundTripper
}

func (t bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// tokenClient is an HTTP client that authenticates with the token in
// tokenFile; without one it sends no token (and public routes only answer).
func tokenClient(tokenFile string, timeout time.Duration, next http.RoundTripper) (*http.Client, error) {
	c := &http.Client{Timeout: timeout, Transport: next}
	if tokenFile == "" {
		return c, nil
	}
	token, err := readTokenFile(tokenFile)
	if err != nil {
		return nil, err
	}
	c.Transport = bearerTransport{token: token, next: next}
	return c, nil
}

// apiError turns a non-2xx answer of the API into an error carrying its
// message.
func apiError(resp *http.Response, body []byte) error {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return fmt.Errorf("%s: %s", resp.Status, e.Error.Message)
	}
	return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
}

const tokenUsage = `Usage: hoso token add|ls|revoke [flags]

  add     make a principal and print its new token (shown this once)
  ls      list the principals: name, role, unit
  revoke  remove a principal: its token is refused at once, everywhere

Every subcommand talks to a running server as an admin:
  --url URL          the server (default http://127.0.0.1:8080)
  --token-file FILE  the admin's token (on a first start DATA/admin.token)
`

// runToken manages principals through the HTTP API of a running server.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return &exitError{2, errors.New("token: add, ls or revoke")}
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("hoso token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "the running server's base URL")
	tokenFile := fs.String("token-file", "", "file holding an admin's token (required)")
	var name, role, unit string
	switch sub {
	case "add":
		fs.StringVar(&name, "name", "", "the principal's name: letters, digits, - and _ (required)")
		fs.StringVar(&role, "role", "", "desk, supervisor, auditor or admin (required)")
		fs.StringVar(&unit, "unit", "", "the scope: a unit code, its subtree; empty is national")
	case "revoke":
		fs.StringVar(&name, "name", "", "the principal to revoke (required)")
	case "ls":
	default:
		fmt.Fprint(stderr, tokenUsage)
		return &exitError{2, fmt.Errorf("token: unknown subcommand %q: add, ls or revoke", sub)}
	}
	if err := parseWithEnvPrefix(fs, rest, "HOSO_TOKEN_"); err != nil {
		return err
	}
	if *tokenFile == "" {
		return &exitError{2, errors.New("token: --token-file is required (an admin's token; DATA/admin.token on a first start)")}
	}
	client, err := tokenClient(*tokenFile, 30*time.Second, nil)
	if err != nil {
		return &exitError{2, err}
	}
	api := strings.TrimRight(*base, "/") + "/v1/tokens"
	do := func(method, u string, body any) ([]byte, error) {
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, fmt.Errorf("url %q: %w", *base, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			return nil, apiError(resp, b)
		}
		return b, nil
	}
	switch sub {
	case "add":
		if name == "" || role == "" {
			return &exitError{2, errors.New("token add: --name and --role are required")}
		}
		b, err := do(http.MethodPost, api, map[string]string{"name": name, "role": role, "unit": unit})
		if err != nil {
			return fmt.Errorf("token add: %w", err)
		}
		var answer struct{ Token string }
		if err := json.Unmarshal(b, &answer); err != nil || answer.Token == "" {
			return fmt.Errorf("token add: unexpected answer %s", b)
		}
		// Only the token on stdout, so that `> file` keeps it and nothing else.
		fmt.Fprintln(stdout, answer.Token)
		if role == string(hoso.RoleDesk) {
			fmt.Fprintf(stderr, "the token is also %s's NATS credential: connect with user %s and the token as password, and send to %s\n",
				name, name, eventstore.DeskSubject(name))
		}
		return nil
	case "revoke":
		if name == "" {
			return &exitError{2, errors.New("token revoke: --name is required")}
		}
		if _, err := do(http.MethodDelete, api+"/"+url.PathEscape(name), nil); err != nil {
			return fmt.Errorf("token revoke: %w", err)
		}
		fmt.Fprintf(stderr, "revoked %s\n", name)
		return nil
	}
	b, err := do(http.MethodGet, api, nil)
	if err != nil {
		return fmt.Errorf("token ls: %w", err)
	}
	var list struct{ Principals []hoso.Principal }
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("token ls: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tUNIT")
	for _, p := range list.Principals {
		scope := p.Unit
		if scope == "" {
			scope = "(national)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Role, scope)
	}
	return tw.Flush()
}
