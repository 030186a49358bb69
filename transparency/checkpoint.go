package transparency

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/hoso-ledger/hoso"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// FormatCheckpoint is the body of a checkpoint (the tlog checkpoint format):
// the origin line naming the ledger, the tree size in decimal and the root
// hash in standard base64, each ending in a newline.
func FormatCheckpoint(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

// ParseCheckpoint decodes a checkpoint body written by FormatCheckpoint.
// It is strict: exactly three lines, a size without sign or leading zero,
// a root of exactly 32 bytes.
func ParseCheckpoint(text string) (origin string, size int64, root tlog.Hash, err error) {
	if !strings.HasSuffix(text, "\n") {
		return "", 0, root, errors.New("checkpoint: does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 {
		return "", 0, root, fmt.Errorf("checkpoint: %d lines, want 3 (origin, size, root)", len(lines))
	}
	origin = lines[0]
	if origin == "" || strings.ContainsAny(origin, " \t\r") {
		return "", 0, root, fmt.Errorf("checkpoint: origin %q: empty or with spaces", origin)
	}
	s := lines[1]
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return "", 0, root, fmt.Errorf("checkpoint: size %q: not a decimal number", s)
	}
	if size, err = strconv.ParseInt(s, 10, 64); err != nil {
		return "", 0, root, fmt.Errorf("checkpoint: size %q: %w", s, err)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(b) != tlog.HashSize {
		return "", 0, root, fmt.Errorf("checkpoint: root %q: not a base64 32-byte hash", lines[2])
	}
	copy(root[:], b)
	return origin, size, root, nil
}

// OpenCheckpoint checks a signed checkpoint note against v and decodes it.
// The origin must be the verifier key's name: one key signs one ledger.
func OpenCheckpoint(signed []byte, v note.Verifier) (hoso.Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unknown *note.UnknownVerifierError
		var unverified *note.UnverifiedNoteError
		switch {
		case errors.As(err, &unknown), errors.As(err, &unverified):
			return hoso.Checkpoint{}, fmt.Errorf("checkpoint signature: not signed by %s", v.Name())
		}
		return hoso.Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	origin, size, root, err := ParseCheckpoint(n.Text)
	if err != nil {
		return hoso.Checkpoint{}, err
	}
	if origin != v.Name() {
		return hoso.Checkpoint{}, fmt.Errorf("checkpoint: origin %q is not the key's ledger %q", origin, v.Name())
	}
	return hoso.Checkpoint{Origin: origin, Size: uint64(size), Root: root[:], Note: string(signed)}, nil
}

// Key is the ledger's checkpoint signing key and its public verifier key.
type Key struct {
	Signer      note.Signer
	Verifier    note.Verifier
	VerifierKey string // name+hash+key, what auditors pin
}

// LoadOrCreateKey reads the signing key (a note private key,
// PRIVATE+KEY+name+hash+key) from path, or creates it there (0600) with the
// name origin, plus its verifier key next to it in path+".pub".
func LoadOrCreateKey(path, origin string) (*Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if origin == "" {
			var r [6]byte
			if _, err := rand.Read(r[:]); err != nil {
				return nil, err
			}
			origin = fmt.Sprintf("hoso-%x", r)
		}
		skey, vkey, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, fmt.Errorf("checkpoint key: origin %q: %w", origin, err)
		}
		if err := writeFileExclusive(path, []byte(skey+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("checkpoint key: %w", err)
		}
		if err := os.WriteFile(path+".pub", []byte(vkey+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("checkpoint key: %w", err)
		}
		b = []byte(skey)
	} else if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	return ParseKey(string(bytes.TrimSpace(b)))
}

// ParseKey reads a note private key and derives its verifier key.
func ParseKey(skey string) (*Key, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	// PRIVATE+KEY+name+hash+base64(algorithm byte, Ed25519 seed)
	// (base64 may itself contain '+', so split off the first four fields only).
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, errors.New("checkpoint key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	return &Key{Signer: signer, Verifier: verifier, VerifierKey: vkey}, nil
}

// Sign signs the checkpoint of a tree.
func (k *Key) Sign(size int64, root tlog.Hash) (hoso.Checkpoint, error) {
	signed, err := note.Sign(&note.Note{Text: FormatCheckpoint(k.Signer.Name(), size, root)}, k.Signer)
	if err != nil {
		return hoso.Checkpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return hoso.Checkpoint{Origin: k.Signer.Name(), Size: uint64(size), Root: root[:], Note: string(signed)}, nil
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
