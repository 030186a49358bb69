package transparency

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const root32 = "6egVmBbbIH/pMh1xSMgkMJzfXzJFV0XK94y62LGf8bM="

func TestParseCheckpoint(t *testing.T) {
	tests := []struct {
		name, text, says string
		size             int64
	}{
		{"valid", "hoso-ab\n2\n" + root32 + "\n", "", 2},
		{"empty tree", "hoso-ab\n0\n" + root32 + "\n", "", 0},
		{"no final newline", "hoso-ab\n2\n" + root32, "newline", 0},
		{"extension line", "hoso-ab\n2\n" + root32 + "\nextra\n", "4 lines", 0},
		{"empty origin", "\n2\n" + root32 + "\n", "origin", 0},
		{"origin with space", "hoso ab\n2\n" + root32 + "\n", "origin", 0},
		{"leading zero", "hoso-ab\n02\n" + root32 + "\n", "size", 0},
		{"negative size", "hoso-ab\n-2\n" + root32 + "\n", "size", 0},
		{"size overflow", "hoso-ab\n99999999999999999999\n" + root32 + "\n", "size", 0},
		{"root not base64", "hoso-ab\n2\n!!!!\n", "root", 0},
		{"root too short", "hoso-ab\n2\nAAAA\n", "root", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin, size, _, err := ParseCheckpoint(tt.text)
			if tt.says == "" {
				if err != nil || origin != "hoso-ab" || size != tt.size {
					t.Fatalf("got %q %d %v", origin, size, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want one saying %q", err, tt.says)
			}
		})
	}
}

func newTestKey(t testing.TB, name string) *Key {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignAndOpenCheckpoint(t *testing.T) {
	k := newTestKey(t, "hoso-test")
	root := tlog.RecordHash([]byte("x"))
	cp, err := k.Sign(7, root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCheckpoint([]byte(cp.Note), k.Verifier)
	if err != nil || got.Size != 7 || !bytes.Equal(got.Root, root[:]) || got.Origin != "hoso-test" {
		t.Fatalf("open: %+v %v", got, err)
	}
	// Another key of the same name does not verify it.
	other := newTestKey(t, "hoso-test")
	if _, err := OpenCheckpoint([]byte(cp.Note), other.Verifier); err == nil || !strings.Contains(err.Error(), "not signed by") {
		t.Errorf("other key: %v", err)
	}
	// A changed size breaks the signature.
	forged := strings.Replace(cp.Note, "\n7\n", "\n8\n", 1)
	if _, err := OpenCheckpoint([]byte(forged), k.Verifier); err == nil {
		t.Error("forged size verified")
	}
	// A key whose name is not the checkpoint's origin is refused.
	foreign := newTestKey(t, "elsewhere")
	cp2, err := foreign.Sign(7, root)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(cp2.Note, "elsewhere\n", "hoso-test\n", 1)
	if _, err := OpenCheckpoint([]byte(text), foreign.Verifier); err == nil {
		t.Error("origin mismatch accepted")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := t.TempDir() + "/checkpoint.key"
	k1, err := LoadOrCreateKey(path, "hoso-x")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(path, "ignored-once-created")
	if err != nil {
		t.Fatal(err)
	}
	if k1.VerifierKey != k2.VerifierKey || k2.Signer.Name() != "hoso-x" {
		t.Errorf("reloaded key differs: %s vs %s", k1.VerifierKey, k2.VerifierKey)
	}
	v, err := ParseVerifierKey(path + ".pub")
	if err != nil || v.Name() != "hoso-x" {
		t.Errorf("public key file: %v", err)
	}
	if _, err := LoadOrCreateKey(t.TempDir()+"/k", "has space"); err == nil {
		t.Error("origin with a space accepted")
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("hoso-ab\n2\n" + root32 + "\n")
	f.Add("hoso-ab\n0\n" + root32 + "\n\n")
	f.Add("a\n1\nAAAA\n")
	f.Fuzz(func(t *testing.T, text string) {
		origin, size, root, err := ParseCheckpoint(text)
		if err != nil {
			return
		}
		if again := FormatCheckpoint(origin, size, root); again != text {
			t.Fatalf("parse then format changed %q into %q", text, again)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	k := newTestKey(f, "hoso-fuzz")
	cp, err := k.Sign(3, tlog.RecordHash([]byte("x")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(cp.Note))
	f.Add([]byte("hoso-fuzz\n3\n" + root32 + "\n\n— hoso-fuzz AAAA\n"))
	f.Fuzz(func(t *testing.T, signed []byte) {
		got, err := OpenCheckpoint(signed, k.Verifier)
		if err != nil {
			return
		}
		// Only what the key signed opens.
		if got.Origin != "hoso-fuzz" || len(got.Root) != tlog.HashSize {
			t.Fatalf("opened %+v", got)
		}
	})
}
