package eventstore

import (
	"fmt"
	"strings"
)

// SubjectPrefix is the subject space of the ledger's events.
const SubjectPrefix = "hoso.events."

// SubjectToken encodes a dossier code as one NATS subject token.
//
// Dossier codes may contain '.', the subject separator, so the encoding
// escapes with '_': '_' becomes "_5F" and '.' becomes "_2E" (their hex byte
// values); every other allowed character (A-Z a-z 0-9 -) stands for itself.
// It is injective because '_' never stands for itself, so DecodeSubjectToken
// recovers the code exactly. Subjects are case-sensitive, like codes.
func SubjectToken(code string) string {
	if !strings.ContainsAny(code, "._") {
		return code
	}
	var b strings.Builder
	b.Grow(len(code) + 8)
	for i := 0; i < len(code); i++ {
		switch c := code[i]; c {
		case '_':
			b.WriteString("_5F")
		case '.':
			b.WriteString("_2E")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DecodeSubjectToken reverses SubjectToken.
func DecodeSubjectToken(token string) (string, error) {
	if !strings.Contains(token, "_") {
		return token, nil
	}
	var b strings.Builder
	for i := 0; i < len(token); i++ {
		if token[i] != '_' {
			b.WriteByte(token[i])
			continue
		}
		switch {
		case strings.HasPrefix(token[i:], "_5F"):
			b.WriteByte('_')
		case strings.HasPrefix(token[i:], "_2E"):
			b.WriteByte('.')
		default:
			return "", fmt.Errorf("subject token %q: bad escape at byte %d", token, i)
		}
		i += 2
	}
	return b.String(), nil
}

// Subject returns the subject of a dossier's events.
func Subject(code string) string { return SubjectPrefix + SubjectToken(code) }

// BucketPrefix is the subject space of a stream laid out in buckets (see
// Config.SubjectBuckets): "hoso.events.bucket.<n>", four tokens, so that no
// dossier's own subject (three tokens) is ever one of them.
const BucketPrefix = SubjectPrefix + "bucket."

// MaxSubjectBuckets bounds Config.SubjectBuckets: the server keeps a few
// hundred bytes per subject, and past this a bucket holds too few dossiers
// to save anything.
const MaxSubjectBuckets = 1 << 24

// BucketOf returns the bucket of a dossier code among n: FNV-1a of the
// code, which every process and every version computes alike.
func BucketOf(code string, n uint32) uint32 {
	return uint32(codeHash(code) % uint64(n))
}

// BucketSubject returns the subject of bucket b.
func BucketSubject(b uint32) string { return fmt.Sprintf("%s%06x", BucketPrefix, b) }

// codeHash is the 64-bit FNV-1a hash of a dossier code.
func codeHash(code string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(code); i++ {
		h ^= uint64(code[i])
		h *= prime
	}
	return h
}
