package eventstore_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/eventstore/clustertest"
	"github.com/nats-io/nats-server/v2/server"
)

// The three node configurations of deploy/nats, as nats-server loads them,
// give the roles exactly the permissions of docs/security.md, the ones the
// code defines.
func TestClusterConfigFiles(t *testing.T) {
	env, _, _, _, _ := clustertest.Keys(t, t.TempDir())
	keys := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
		keys[k] = v
	}
	dir := clustertest.ConfigDir(t)
	names := map[string]bool{}
	for i := 1; i <= 3; i++ {
		path := filepath.Join(dir, fmt.Sprintf("node-%d.conf", i))
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if names[opts.ServerName] || opts.ServerName == "" {
			t.Errorf("%s: server_name %q not unique", path, opts.ServerName)
		}
		names[opts.ServerName] = true
		if !opts.JetStream || opts.Cluster.Name != "hoso" || len(opts.Routes) != 3 || opts.MaxPayload != 8<<20 {
			t.Errorf("%s: jetstream %v, cluster %q, %d routes, max payload %d", path, opts.JetStream, opts.Cluster.Name, len(opts.Routes), opts.MaxPayload)
		}
		if opts.SystemAccount != "SYS" {
			t.Errorf("%s: system account %q", path, opts.SystemAccount)
		}
		users := map[string]*server.NkeyUser{}
		for _, u := range opts.Nkeys {
			users[u.Nkey] = u
		}
		for key, want := range map[string]struct {
			account string
			perms   *server.Permissions
		}{
			clustertest.LedgerKeyEnv: {clustertest.Account, eventstore.LedgerPermissions()},
			clustertest.DeskKeyEnv:   {clustertest.Account, eventstore.DeskPermissions()},
			clustertest.AdminKeyEnv:  {"SYS", nil},
		} {
			u := users[keys[key]]
			if u == nil || u.Account == nil || u.Account.Name != want.account {
				t.Errorf("%s: the user of %s is not in account %s: %+v", path, key, want.account, u)
				continue
			}
			if !samePermissions(u.Permissions, want.perms) {
				t.Errorf("%s: the user of %s may\n%s\nthe code says\n%s", path, key, describe(u.Permissions), describe(want.perms))
			}
		}
		ac := opts.AuthCallout
		if ac == nil || ac.Issuer != keys[clustertest.CalloutKeyEnv] || ac.Account != clustertest.Account ||
			!slices.Equal(ac.AuthUsers, []string{keys[clustertest.LedgerKeyEnv], keys[clustertest.DeskKeyEnv]}) ||
			!slices.Equal(ac.AllowedAccounts, []string{clustertest.Account}) {
			t.Errorf("%s: auth_callout %+v: want issuer %s, account %s, the ledger's and the shared desk's users exempt, only %s delegated",
				path, ac, clustertest.CalloutKeyEnv, clustertest.Account, clustertest.Account)
		}
		if len(opts.Nkeys) != 3 || len(opts.Users) != 0 {
			t.Errorf("%s: %d NKey users and %d other users, want the three roles only", path, len(opts.Nkeys), len(opts.Users))
		}
	}
}

func samePermissions(a, b *server.Permissions) bool {
	return describe(a) == describe(b)
}

// describe writes permissions in one canonical form.
func describe(p *server.Permissions) string {
	if p == nil {
		return "everything"
	}
	list := func(sp *server.SubjectPermission) string {
		if sp == nil {
			return "-"
		}
		allow, deny := slices.Clone(sp.Allow), slices.Clone(sp.Deny)
		slices.Sort(allow)
		slices.Sort(deny)
		return fmt.Sprintf("allow %v deny %v", allow, deny)
	}
	resp := "-"
	if p.Response != nil {
		resp = fmt.Sprintf("%d in %v", p.Response.MaxMsgs, p.Response.Expires)
	}
	return fmt.Sprintf("publish %s; subscribe %s; responses %s", list(p.Publish), list(p.Subscribe), resp)
}
