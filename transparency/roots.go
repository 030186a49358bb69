package transparency

import (
	"crypto/sha256"

	"golang.org/x/mod/sumdb/tlog"
)

// Roots computes the root of a tree as its leaves arrive in order, in
// memory logarithmic in its size: the roots of the perfect subtrees its
// leaves make so far (RFC 6962's compact range), from the largest. A backup
// is checked with it against its signed checkpoints without holding a
// tree of every event.
type Roots struct {
	size  int64
	stack []tlog.Hash
}

// Append adds the next leaf hash.
func (r *Roots) Append(leaf tlog.Hash) {
	h := leaf
	for n := r.size; n&1 == 1; n >>= 1 {
		h = tlog.NodeHash(r.stack[len(r.stack)-1], h)
		r.stack = r.stack[:len(r.stack)-1]
	}
	r.stack = append(r.stack, h)
	r.size++
}

// Size is the number of leaves appended.
func (r *Roots) Size() int64 { return r.size }

// Root is the tree hash of the leaves appended so far (tlog.TreeHash).
func (r *Roots) Root() tlog.Hash {
	if len(r.stack) == 0 {
		return sha256.Sum256(nil) // RFC 6962: the empty tree
	}
	h := r.stack[len(r.stack)-1]
	for i := len(r.stack) - 2; i >= 0; i-- {
		h = tlog.NodeHash(r.stack[i], h)
	}
	return h
}
