package eventstore_test

import (
	"testing"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
)

func TestSubjectToken(t *testing.T) {
	for code, want := range map[string]string{
		"ABC-1":                     "ABC-1",
		"000.00.31.H26-200105-0001": "000_2E00_2E31_2EH26-200105-0001",
		"a_b":                       "a_5Fb",
		"a_2Eb":                     "a_5F2Eb",
	} {
		if got := eventstore.SubjectToken(code); got != want {
			t.Errorf("SubjectToken(%q) = %q, want %q", code, got, want)
		}
	}
	// a.b and a_2Eb must not collide.
	if eventstore.SubjectToken("a.b") == eventstore.SubjectToken("a_2Eb") {
		t.Error("collision")
	}
}

func FuzzSubjectToken(f *testing.F) {
	for _, s := range []string{"A", "000.00.31.H26-200105-0001", "a_b", "a_2Eb", "a.b", "_._"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !hoso.ValidDossierCode(a) || !hoso.ValidDossierCode(b) {
			return
		}
		ta, tb := eventstore.SubjectToken(a), eventstore.SubjectToken(b)
		back, err := eventstore.DecodeSubjectToken(ta)
		if err != nil || back != a {
			t.Fatalf("round trip %q -> %q -> %q, %v", a, ta, back, err)
		}
		if a != b && ta == tb {
			t.Fatalf("%q and %q share the token %q", a, b, ta)
		}
		for _, c := range []byte(ta) {
			if c == '.' || c == '*' || c == '>' || c == ' ' {
				t.Fatalf("token %q has %q", ta, c)
			}
		}
	})
}

// A dossier's bucket is part of the stored layout: every process and every
// version must compute the same one, so these values may never change.
func TestBucketOfIsStable(t *testing.T) {
	for _, c := range []struct {
		code    string
		buckets uint32
		want    uint32
		subject string
	}{
		{"HN-2024-000001", 1 << 20, 391094, "hoso.events.bucket.05f7b6"},
		{"000.00.04.H26-240115-0001", 1 << 20, 375781, "hoso.events.bucket.05bbe5"},
		{"x", 1 << 20, 136967, "hoso.events.bucket.021707"},
		{"HN-2024-000001", 4, 2, "hoso.events.bucket.000002"},
	} {
		b := eventstore.BucketOf(c.code, c.buckets)
		if b != c.want || eventstore.BucketSubject(b) != c.subject {
			t.Errorf("BucketOf(%q, %d) = %d (%s), want %d (%s)", c.code, c.buckets, b, eventstore.BucketSubject(b), c.want, c.subject)
		}
	}
}
