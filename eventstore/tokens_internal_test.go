package eventstore

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzTokenBucketEntry: whatever a backup's principals.bin holds, a key
// that passes Check names its own record (a principal's under its name, a
// live token's under its hash); nothing panics.
func FuzzTokenBucketEntry(f *testing.F) {
	hash := strings.Repeat("ab", 32)
	f.Add("p.desk-00127", []byte(`{"name":"desk-00127","role":"desk","unit":"00127","token_sha256":"`+hash+`","created_at":"2024-03-01T00:00:00Z"}`))
	f.Add("t."+hash, []byte(`{"name":"desk-00127","role":"desk","unit":"00127","token_sha256":"`+hash+`","created_at":"2024-03-01T00:00:00Z"}`))
	f.Add("t."+hash, []byte(`{"name":"x","role":"admin","unit":"","token_sha256":"`+hash+`","created_at":"2024-03-01T00:00:00Z","revoked_at":"2024-03-02T00:00:00Z"}`))
	f.Add("p.hoso", []byte(`{"name":"hoso","role":"desk","token_sha256":"`+hash+`"}`))
	f.Add("p.a", []byte(`{}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		e := TokenBucketEntry{Key: key, Value: value}
		if e.Check() != nil {
			return
		}
		var rec tokenRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			t.Fatalf("%q passed Check with a value that is no record: %v", key, err)
		}
		name, isPrincipal := strings.CutPrefix(key, "p.")
		hash, isToken := strings.CutPrefix(key, "t.")
		switch {
		case isPrincipal && (name != rec.Name || CheckPrincipalName(name) != nil):
			t.Fatalf("principal key %q passed Check with the record of %q", key, rec.Name)
		case isToken && (hash != rec.TokenSHA256 || len(hash) != 64 || rec.RevokedAt != nil):
			t.Fatalf("token key %q passed Check with token %q", key, rec.TokenSHA256)
		case !isPrincipal && !isToken:
			t.Fatalf("key %q passed Check", key)
		}
	})
}
