package eventstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Credential files of the embedded server's two roles, generated in the data
// directory on first start (mode 0600). Each holds an NKey user seed, which
// the nats CLI takes with --nkey.
const (
	LedgerKeyFile = "nats-ledger.nk"
	DeskKeyFile   = "nats-desk.nk"
)

// DeskPermissions are the shared desk role's, whose requests name their
// desk by a bearer token (desk principals are NATS users of their own, see
// DeskCallout): request the ingest service, discover
// it (`nats micro ls/info/stats`), and receive the answers on its inbox;
// nothing else. No JetStream API, no event subjects.
func DeskPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: append([]string{IngestSubject}, serviceDiscovery()...)},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// LedgerPermissions are what the ledger's own role needs on an external
// cluster (docs/security.md writes them as server configuration): append
// events and checkpoints, keep the principals in the token bucket, use the
// JetStream API, serve hoso.ingest and the desks' hoso.ingest.<name>,
// answer the servers' authorization callout (DeskCallout), and answer
// requests. The embedded server's ledger user, the server's
// owner, has every permission.
func LedgerPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			SubjectPrefix + ">", CheckpointSubject, "$KV." + TokenBucket + ".>", "$JS.API.>", "_INBOX.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{IngestSubject, DeskSubject("*"), server.AuthCalloutSubject, "$SRV.>", "_INBOX.>"}},
		// Answers to desk systems whose inbox prefix is not _INBOX.
		Response: &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
	}
}

// loadOrCreateNKey returns the key pair stored in path, creating one with
// create (0600) when the file does not exist.
func loadOrCreateNKey(path string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return loadNKey(path)
	}
	kp, err := create()
	if err != nil {
		return nil, fmt.Errorf("create NATS key %s: %w", path, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	if err := writeFileExclusive(path, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write NATS key: %w", err)
	}
	return kp, nil
}

// writeFileExclusive creates path with data, failing if it exists, and
// syncs it so that a crash cannot leave a half-written key.
func writeFileExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serverKeys are what the embedded server's users authenticate with.
type serverKeys struct {
	// ledger is the ledger's own role, with every permission.
	ledger nkeys.KeyPair
	// issuer signs the desk principals' users; callout is the user, in
	// the system account, whose connection answers the callout.
	issuer, callout nkeys.KeyPair
}

// serverUsers sets up the embedded server's users: the ledger's own role
// with every permission, the shared desk role, and every desk principal
// through the authorization callout (DeskCallout).
//
// The callout is answered from the system account, by a user made afresh
// at every start and known only to this process. In the account that
// answers it, the server denies every connection publishing to the
// callout's subject, so each of that account's publishes is checked; in
// the global account, with the stream, that would be every append.
func serverUsers(dataDir string, opts *server.Options) (keys serverKeys, err error) {
	if keys.ledger, err = loadOrCreateNKey(filepath.Join(dataDir, LedgerKeyFile), nkeys.CreateUser); err != nil {
		return keys, err
	}
	desk, err := loadOrCreateNKey(filepath.Join(dataDir, DeskKeyFile), nkeys.CreateUser)
	if err != nil {
		return keys, err
	}
	if keys.issuer, err = loadOrCreateNKey(filepath.Join(dataDir, CalloutKeyFile), nkeys.CreateAccount); err != nil {
		return keys, err
	}
	if keys.callout, err = nkeys.CreateUser(); err != nil {
		return keys, err
	}
	var pub [4]string
	for i, kp := range []nkeys.KeyPair{keys.ledger, desk, keys.issuer, keys.callout} {
		if pub[i], err = kp.PublicKey(); err != nil {
			return keys, err
		}
	}
	ledgerPub, deskPub, issuerPub, calloutPub := pub[0], pub[1], pub[2], pub[3]
	sys := server.NewAccount(server.DEFAULT_SYSTEM_ACCOUNT)
	opts.Accounts = []*server.Account{sys}
	opts.SystemAccount = sys.Name
	opts.Nkeys = []*server.NkeyUser{
		{Nkey: ledgerPub},
		{Nkey: deskPub, Permissions: DeskPermissions()},
		{Nkey: calloutPub, Account: sys, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Deny: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{server.AuthCalloutSubject}},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
		}},
	}
	opts.AuthCallout = &server.AuthCallout{
		Issuer:    issuerPub,
		Account:   sys.Name,
		AuthUsers: []string{ledgerPub, deskPub, calloutPub},
	}
	return keys, nil
}

// loadNKey reads the key pair whose seed is in path.
func loadNKey(path string) (nkeys.KeyPair, error) {
	seed, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read NATS key: %w", err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return nil, fmt.Errorf("NATS key %s: %w", path, err)
	}
	return kp, nil
}

// nkeyOption authenticates a connection with kp.
func nkeyOption(kp nkeys.KeyPair) (nats.Option, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// credentialsOption authenticates with a file: a .creds file (JWT and seed)
// or a bare NKey seed.
func credentialsOption(path string) (nats.Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(path), nil
	}
	return nats.NkeyOptionFromSeed(path)
}
