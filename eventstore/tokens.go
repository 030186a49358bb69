package eventstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats.go/jetstream"
)

// TokenBucket is the JetStream key-value bucket of the deployment's
// principals and the hashes of their bearer tokens. Every hoso process of a
// deployment follows it, so a token made or revoked by one holds in all;
// desk systems, whose NATS permissions give no JetStream API, cannot
// read it.
const TokenBucket = "HOSO_TOKENS"

// TokenPrefix starts every bearer token, so that a leaked one is easy to
// recognise (and to search for in logs and repositories).
const TokenPrefix = "hoso_"

// tokenBytes is a token's randomness: 256 bits.
const tokenBytes = 32

// tokenLen is the length of a token: the prefix and its randomness in
// unpadded base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// Tokens keeps principals in TokenBucket: under "p.<name>" and under
// "t.<sha256 of the token>" the same record, with the token's hash but
// never the token.
//
// Authenticating must cost next to nothing beside a single event, so each
// Tokens keeps the bucket's tokens in memory, followed by a watch of the
// bucket from a goroutine that Close ends: a token made or revoked by any
// process reaches every other as soon as the server delivers the change
// (well under a millisecond on one server, a round trip in a cluster), and
// the revoking process itself refuses it at once. A token not in memory is
// read from the bucket, so a new one works everywhere at once too. Should
// the watch end, every authentication reads the bucket again.
type Tokens struct {
	kv    jetstream.KeyValue
	units *hoso.Units
	now   hoso.Clock

	mu sync.RWMutex
	// byHash holds every token's principal by hash, and byName the same
	// principals by name (a NATS desk is known by its subject, which names
	// it), while the watch runs (live); once it has stopped, nothing is
	// trusted from memory. The principals are shared with every caller,
	// which must not change them, so that authenticating copies none.
	byHash map[string]*hoso.Principal
	byName map[string]*hoso.Principal
	live   bool

	watcher jetstream.KeyWatcher
	done    chan struct{}
}

var _ hoso.TokenService = (*Tokens)(nil)

// tokenRecord is a principal as stored. A revoked principal's record stays
// under "p.<name>" with RevokedAt set, so that its name, which events carry
// in `by`, is never given to another principal.
type tokenRecord struct {
	hoso.Principal
	TokenSHA256 string     `json:"token_sha256"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// OpenTokens opens (creating it if need be) the store's token bucket.
// units checks the scope of new principals; now dates their records.
func (s *Store) OpenTokens(ctx context.Context, units *hoso.Units, now hoso.Clock) (*Tokens, error) {
	kv, err := s.tokenBucket(ctx)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	t := &Tokens{kv: kv, units: units, now: now, byHash: map[string]*hoso.Principal{}, byName: map[string]*hoso.Principal{}, done: make(chan struct{})}
	if t.watcher, err = kv.Watch(context.Background(), "t.*"); err != nil {
		return nil, fmt.Errorf("watch token bucket %s: %w", TokenBucket, err)
	}
	// The watch first gives every token there is, then nil, then changes:
	// wait for the nil, so that memory is whole before the first request.
	initial := make(chan struct{})
	go t.follow(initial)
	select {
	case <-initial:
	case <-ctx.Done():
		t.Close()
		return nil, ctx.Err()
	}
	return t, nil
}

// tokenBucket opens the token bucket, creating it if need be.
func (s *Store) tokenBucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      TokenBucket,
		Description: "hoso: principals and the SHA-256 of their bearer tokens",
		History:     1,
		Replicas:    s.cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("token bucket %s: %w", TokenBucket, err)
	}
	return kv, nil
}

// TokenBucketEntry is a key of the token bucket and its value, as a backup
// keeps it: a principal's record ("p.<name>", revoked ones included) or a
// token's ("t.<sha256>"). Neither holds a token, only its hash.
type TokenBucketEntry struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Check returns an error unless e is a key of the token bucket as the
// ledger writes them: a principal's record under its name, or a live
// token's record under its hash.
func (e TokenBucketEntry) Check() error {
	var rec tokenRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return fmt.Errorf("%s: not a principal's record: %w", e.Key, err)
	}
	if err := CheckPrincipalName(rec.Name); err != nil {
		return fmt.Errorf("%s: %w", e.Key, err)
	}
	if _, err := hoso.ParseRole(string(rec.Role)); err != nil {
		return fmt.Errorf("%s: %w", e.Key, err)
	}
	if b, err := hex.DecodeString(rec.TokenSHA256); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("%s: token_sha256 %q is no SHA-256", e.Key, rec.TokenSHA256)
	}
	switch {
	case e.Key == "p."+rec.Name:
	case e.Key == "t."+rec.TokenSHA256 && rec.RevokedAt == nil:
	default:
		return fmt.Errorf("%s: the key does not match its record (%s, token %s)", e.Key, rec.Name, rec.TokenSHA256)
	}
	return nil
}

// ReadTokenBucket calls fn for every key of the token bucket, by key;
// for none when the bucket does not exist. It creates nothing.
func (s *Store) ReadTokenBucket(ctx context.Context, fn func(TokenBucketEntry) error) error {
	kv, err := s.js.KeyValue(ctx, TokenBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token bucket %s: %w", TokenBucket, err)
	}
	keys, err := bucketKeys(ctx, kv)
	if err != nil {
		return err
	}
	for _, k := range keys {
		entry, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // revoked meanwhile
		}
		if err != nil {
			return fmt.Errorf("read %s of token bucket: %w", k, err)
		}
		if err := fn(TokenBucketEntry{Key: k, Value: entry.Value()}); err != nil {
			return err
		}
	}
	return nil
}

// RestoreTokenBucket writes entries into the token bucket, creating it;
// a bucket that holds any key already is refused, and nothing is written.
func (s *Store) RestoreTokenBucket(ctx context.Context, entries []TokenBucketEntry) error {
	kv, err := s.tokenBucket(ctx)
	if err != nil {
		return err
	}
	if err := checkBucketEmpty(ctx, kv); err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := kv.Create(ctx, e.Key, e.Value); err != nil {
			return fmt.Errorf("restore %s into token bucket: %w", e.Key, err)
		}
	}
	return nil
}

// CheckTokenBucketEmpty returns an error unless the token bucket is absent
// or holds no key: what a restore checks before it writes anything.
func (s *Store) CheckTokenBucketEmpty(ctx context.Context) error {
	kv, err := s.js.KeyValue(ctx, TokenBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token bucket %s: %w", TokenBucket, err)
	}
	return checkBucketEmpty(ctx, kv)
}

func checkBucketEmpty(ctx context.Context, kv jetstream.KeyValue) error {
	keys, err := bucketKeys(ctx, kv)
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		return fmt.Errorf("token bucket %s already holds %d keys: restore only into an empty ledger", TokenBucket, len(keys))
	}
	return nil
}

// bucketKeys lists a bucket's keys, sorted.
func bucketKeys(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list token bucket: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// follow applies the watch's updates to memory until the watch stops.
func (t *Tokens) follow(initial chan struct{}) {
	defer close(t.done)
	defer func() {
		t.mu.Lock()
		t.live, t.byHash, t.byName = false, nil, nil
		t.mu.Unlock()
	}()
	for e := range t.watcher.Updates() {
		if e == nil {
			t.mu.Lock()
			t.live = true
			t.mu.Unlock()
			close(initial)
			continue
		}
		hash := strings.TrimPrefix(e.Key(), "t.")
		var rec tokenRecord
		put := e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &rec) == nil && rec.TokenSHA256 == hash
		t.mu.Lock()
		if t.byHash != nil {
			if put {
				t.remember(hash, rec.Principal)
			} else {
				t.forget(hash)
			}
		}
		t.mu.Unlock()
	}
}

// remember and forget keep byHash and byName in step; t.mu is held.
func (t *Tokens) remember(hash string, p hoso.Principal) {
	t.byHash[hash] = &p
	t.byName[p.Name] = &p
}

func (t *Tokens) forget(hash string) {
	if p, ok := t.byHash[hash]; ok {
		delete(t.byName, p.Name)
		delete(t.byHash, hash)
	}
}

// Close stops the watch and waits for its goroutine.
func (t *Tokens) Close() error {
	err := t.watcher.Stop()
	<-t.done
	return err
}

// None reports whether the bucket holds no token at all, as the watch had
// it when OpenTokens returned or since: a deployment's first start. It
// costs no read of the bucket, whatever the number of principals.
func (t *Tokens) None() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.live && len(t.byHash) == 0
}

// cached returns the principal memory holds for the token whose hex
// SHA-256 is hash; known is false when memory cannot say (not there, or
// the watch has stopped).
func (t *Tokens) cached(hash []byte) (p *hoso.Principal, known bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.live {
		return nil, false
	}
	p, known = t.byHash[string(hash)] // a lookup by []byte allocates nothing
	return p, known
}

// CheckPrincipalName returns an EINVALID error naming "name" unless name
// is 1 to 64 letters, digits, '-' or '_': a name that is a key of the
// bucket and a token of a NATS subject (a desk's ingest subject).
func CheckPrincipalName(name string) error {
	if name == "" || len(name) > 64 {
		return hoso.FieldErrorf("name", "must be 1 to 64 characters, got %d", len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return hoso.FieldErrorf("name", "may hold only letters, digits, '-' and '_', got %q", name)
		}
	}
	if name == hoso.SystemPrincipal {
		return hoso.FieldErrorf("name", "%q is the ledger's own name", name)
	}
	return nil
}

// CreateToken adds p with a new token and returns the token, which is
// shown this once: only its hash is kept.
func (t *Tokens) CreateToken(ctx context.Context, p hoso.Principal) (string, error) {
	if err := CheckPrincipalName(p.Name); err != nil {
		return "", err
	}
	if _, err := hoso.ParseRole(string(p.Role)); err != nil {
		return "", err
	}
	// A unit of any date: a scope may be a unit since merged, for the
	// events and reports of its time.
	if p.Unit != "" && len(t.units.History(p.Unit)) == 0 {
		return "", hoso.FieldErrorf("unit", "unknown unit %q (empty for a national scope)", p.Unit)
	}
	if p.Role == hoso.RoleAdmin && p.Unit != "" {
		return "", hoso.FieldErrorf("unit", "an admin is national: it manages every principal, got unit %q", p.Unit)
	}
	secret := make([]byte, tokenBytes)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	hash := tokenHash(token)
	rec, err := json.Marshal(tokenRecord{Principal: p, TokenSHA256: hash, CreatedAt: t.now().UTC()})
	if err != nil {
		return "", err
	}
	// The name first: two processes creating one name cannot both win.
	if _, err := t.kv.Create(ctx, "p."+p.Name, rec); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", hoso.Errorf(hoso.ECONFLICT, "name: a principal named %q exists or was revoked; a name is never given twice, since events carry it in `by`", p.Name)
		}
		return "", fmt.Errorf("store principal %s: %w", p.Name, err)
	}
	if _, err := t.kv.Put(ctx, "t."+hash, rec); err != nil {
		_ = t.kv.Delete(ctx, "p."+p.Name) // a name without a token would block its re-creation
		return "", fmt.Errorf("store token of %s: %w", p.Name, err)
	}
	// Here at once, as Revoke removes at once.
	t.mu.Lock()
	if t.byHash != nil {
		t.remember(hash, p)
	}
	t.mu.Unlock()
	return token, nil
}

// tokenHash is the hex SHA-256 of a token: a token has 256 bits of
// randomness, so a plain hash keeps it as safe as a slow one would.
func tokenHash(token string) string {
	var hash [2 * sha256.Size]byte
	return string(appendTokenHash(hash[:0], token))
}

// appendTokenHash appends tokenHash(token) to b.
func appendTokenHash(b []byte, token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return hex.AppendEncode(b, sum[:])
}

// errBadToken is the one answer to every token that does not authenticate,
// whatever the reason, so that the answer tells an attacker nothing.
var errBadToken = hoso.Errorf(hoso.EUNAUTHORIZED, "the bearer token is unknown, malformed or revoked")

// Authenticate returns the principal of token.
func (t *Tokens) Authenticate(ctx context.Context, token string) (*hoso.Principal, error) {
	if len(token) != tokenLen || !strings.HasPrefix(token, TokenPrefix) {
		return nil, errBadToken
	}
	var buf [2 * sha256.Size]byte
	hashBytes := appendTokenHash(buf[:0], token)
	if p, ok := t.cached(hashBytes); ok {
		return p, nil
	}
	hash := string(hashBytes)
	entry, err := t.kv.Get(ctx, "t."+hash)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, fmt.Errorf("read token bucket: %w", err)
	}
	var rec tokenRecord
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return nil, fmt.Errorf("token record: %w", err)
	}
	// The key is the hash already; comparing it again in constant time
	// keeps a damaged or planted record from matching another token.
	if subtle.ConstantTimeCompare([]byte(rec.TokenSHA256), []byte(hash)) != 1 {
		return nil, errBadToken
	}
	p := rec.Principal
	return &p, nil
}

// Principals lists every principal by name, without secrets.
func (t *Tokens) Principals(ctx context.Context) ([]hoso.Principal, error) {
	records, err := t.records(ctx)
	if err != nil {
		return nil, err
	}
	ps := make([]hoso.Principal, len(records))
	for i, r := range records {
		ps[i] = r.Principal
	}
	return ps, nil
}

// records returns every principal's record, by name.
func (t *Tokens) records(ctx context.Context) ([]tokenRecord, error) {
	lister, err := t.kv.ListKeysFiltered(ctx, "p.*")
	if err != nil {
		return nil, fmt.Errorf("list principals: %w", err)
	}
	// Once Keys is drained its subscription is gone already: Stop only
	// matters on an early return, and its error never.
	defer func() { _ = lister.Stop() }()
	var names []string
	for k := range lister.Keys() {
		names = append(names, strings.TrimPrefix(k, "p."))
	}
	slices.Sort(names)
	var out []tokenRecord
	for _, name := range names {
		rec, err := t.record(ctx, name)
		if hoso.ErrorCode(err) == hoso.ENOTFOUND {
			continue // revoked while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// record returns the live principal named name; a revoked one is
// ENOTFOUND, as one that never was.
func (t *Tokens) record(ctx context.Context, name string) (tokenRecord, error) {
	rec, _, err := t.storedRecord(ctx, name)
	if err == nil && rec.RevokedAt != nil {
		err = hoso.Errorf(hoso.ENOTFOUND, "no principal named %q (revoked)", name)
	}
	return rec, err
}

// storedRecord returns name's record, revoked or not, and its revision.
func (t *Tokens) storedRecord(ctx context.Context, name string) (tokenRecord, uint64, error) {
	var rec tokenRecord
	entry, err := t.kv.Get(ctx, "p."+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, 0, hoso.Errorf(hoso.ENOTFOUND, "no principal named %q", name)
	}
	if err != nil {
		return rec, 0, fmt.Errorf("read principal %s: %w", name, err)
	}
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return rec, 0, fmt.Errorf("principal record %s: %w", name, err)
	}
	return rec, entry.Revision(), nil
}

// Principal returns the live principal named name, ENOTFOUND if there is
// none or it was revoked: from memory while the watch runs, else from the
// bucket. The NATS door calls it for every request on a desk's subject.
func (t *Tokens) Principal(ctx context.Context, name string) (*hoso.Principal, error) {
	t.mu.RLock()
	p, known := t.byName[name] // nil once the watch has stopped
	t.mu.RUnlock()
	if known {
		return p, nil
	}
	// Made by another process a moment ago, or the watch has stopped: the
	// bucket says, by the name's record and by its token's, which Revoke
	// removes first.
	rec, err := t.record(ctx, name)
	if err != nil {
		return nil, err
	}
	if _, err := t.kv.Get(ctx, "t."+rec.TokenSHA256); errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, hoso.Errorf(hoso.ENOTFOUND, "no principal named %q (revoked)", name)
	} else if err != nil {
		return nil, fmt.Errorf("read token bucket: %w", err)
	}
	return &rec.Principal, nil
}

// Revoke removes the principal's token: its next request here is refused,
// and at every other process once the change reaches its watch. Its record
// stays, marked revoked, so that its name is never given again.
func (t *Tokens) Revoke(ctx context.Context, name string) error {
	if CheckPrincipalName(name) != nil {
		return hoso.Errorf(hoso.ENOTFOUND, "no principal named %q", name)
	}
	rec, rev, err := t.storedRecord(ctx, name)
	if err != nil {
		return err
	}
	if rec.RevokedAt != nil {
		return hoso.Errorf(hoso.ENOTFOUND, "no principal named %q (revoked)", name)
	}
	// The token first: once it is gone, nothing authenticates as name.
	if err := t.kv.Purge(ctx, "t."+rec.TokenSHA256); err != nil {
		return fmt.Errorf("revoke token of %s: %w", name, err)
	}
	// Here at once, without waiting for the watch to bring it back.
	t.mu.Lock()
	if t.byHash != nil {
		t.forget(rec.TokenSHA256)
	}
	t.mu.Unlock()
	revoked := t.now().UTC()
	rec.RevokedAt = &revoked
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// Update, not Put: of two processes revoking at once, one says so.
	if _, err := t.kv.Update(ctx, "p."+name, b, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return hoso.Errorf(hoso.ENOTFOUND, "no principal named %q (revoked)", name)
		}
		return fmt.Errorf("mark principal %s revoked: %w", name, err)
	}
	return nil
}
