package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
)

// Token files that `hoso serve` writes in the data directory (mode 0600):
// the first admin's, on the deployment's first start, and the demo's.
const (
	AdminTokenFile          = "admin.token"
	DemoSupervisorTokenFile = "demo-supervisor.token"
	DemoDeskTokenFile       = "demo-desk.token"
	DemoAuditorTokenFile    = "demo-auditor.token"
)

// The demo's principals: a supervisor and an auditor of Hà Nội, which the
// demo history is of, and the desk of Quận Long Biên (its own desk and its
// wards).
var (
	demoSupervisor = hoso.Principal{Name: "demo-supervisor-hanoi", Role: hoso.RoleSupervisor, Unit: "01"}
	demoAuditor    = hoso.Principal{Name: "demo-auditor-hanoi", Role: hoso.RoleAuditor, Unit: "01"}
	demoDesk       = hoso.Principal{Name: "demo-desk-long-bien", Role: hoso.RoleDesk, Unit: "004"}
)

// openTokens opens the deployment's principals, makes its desks NATS users
// when the server has a callout for them, and, on its first start
// (no principal at all), makes the first admin, whose token it writes to
// DATA/admin.token: from there the admin makes everyone else's.
func (m *Main) openTokens(ctx context.Context) error {
	tokens, err := m.Store.OpenTokens(ctx, m.Units, m.Now)
	if err != nil {
		return err
	}
	m.Tokens = tokens
	if m.DeskCallout = m.Store.DeskCallout(tokens); m.DeskCallout != nil {
		if err := m.DeskCallout.Open(); err != nil {
			return err
		}
	}
	if tokens.None() {
		path := filepath.Join(m.Config.DataDir, AdminTokenFile)
		created, err := m.tokenFile(ctx, hoso.Principal{Name: "admin", Role: hoso.RoleAdmin}, path)
		if err != nil {
			return err
		}
		if created {
			m.Logger.Info("first start: the admin's token is in this file (0600); make the other principals' tokens with it: hoso token add --token-file "+path+" …", "file", path)
		}
	}
	return nil
}

// tokenFile makes p's token and writes it to path (0600), unless p exists
// already; created says whether it did.
func (m *Main) tokenFile(ctx context.Context, p hoso.Principal, path string) (created bool, err error) {
	token, err := m.Tokens.CreateToken(ctx, p)
	if hoso.ErrorCode(err) == hoso.ECONFLICT {
		return false, nil // another process of the deployment, or an earlier start, made it
	}
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(path+".tmp", []byte(token+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("write %s's token: %w", p.Name, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return false, fmt.Errorf("write %s's token: %w", p.Name, err)
	}
	return true, nil
}

// demoTokens makes the demo's principals once, and says where their
// tokens are and where to sign in.
func (m *Main) demoTokens(ctx context.Context) error {
	sup := filepath.Join(m.Config.DataDir, DemoSupervisorTokenFile)
	aud := filepath.Join(m.Config.DataDir, DemoAuditorTokenFile)
	desk := filepath.Join(m.Config.DataDir, DemoDeskTokenFile)
	for p, path := range map[hoso.Principal]string{demoSupervisor: sup, demoAuditor: aud, demoDesk: desk} {
		if _, err := m.tokenFile(ctx, p, path); err != nil {
			return err
		}
	}
	for _, path := range []string{sup, aud, desk} {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil // made by another process of the deployment: its files are there
		}
	}
	m.Logger.Info("demo: sign in as Hà Nội's supervisor at "+m.HTTP.URL()+"/sign-in with the token in "+sup,
		"supervisor", demoSupervisor.Name, "token_file", sup)
	m.Logger.Info("demo: Hà Nội's auditor reads proofs with the token in "+aud, "auditor", demoAuditor.Name, "token_file", aud)
	m.Logger.Info("demo: Quận Long Biên's desk posts events with the token in "+desk+
		": curl -H \"Authorization: Bearer $(cat "+desk+")\" "+m.HTTP.URL()+"/v1/events …",
		"desk", demoDesk.Name, "token_file", desk)
	if m.DeskCallout != nil {
		m.Logger.Info("demo: and over NATS, as a NATS user of its own: nats --server "+m.Store.ClientURL()+" --user "+demoDesk.Name+
			" --password \"$(cat "+desk+")\" req "+eventstore.DeskSubject(demoDesk.Name)+" …", "desk", demoDesk.Name)
	}
	return nil
}
