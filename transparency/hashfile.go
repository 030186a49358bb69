package transparency

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

var (
	_ tlog.HashReader = (*hashFile)(nil)
	_ tlog.HashReader = (*memTree)(nil)
)

// hashFile is the tree's hash storage: every stored hash of tlog's layout
// (tlog.StoredHashIndex), 32 bytes each, in index order. The hashes of leaf
// n come after those of leaf n-1, so any prefix of StoredHashCount(n)
// hashes is exactly the tree of n leaves: a torn write at a crash is cut
// back to the last whole leaf on open, and the rest is re-read from the
// stream.
type hashFile struct {
	f    *os.File
	mu   sync.RWMutex
	size int64 // leaves
}

func openHashFile(path string) (*hashFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tree file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tree file: %w", err)
	}
	stored := st.Size() / tlog.HashSize
	n := leavesIn(stored)
	if keep := tlog.StoredHashCount(n) * tlog.HashSize; keep != st.Size() {
		if err := f.Truncate(keep); err != nil {
			f.Close()
			return nil, fmt.Errorf("tree file: cut torn tail: %w", err)
		}
	}
	return &hashFile{f: f, size: n}, nil
}

// leavesIn returns the largest n whose tree fits in stored hashes.
func leavesIn(stored int64) int64 {
	// StoredHashCount(n) is between 2n-1 and 2n, so n is near stored/2.
	n := stored/2 + 1
	for n > 0 && tlog.StoredHashCount(n) > stored {
		n--
	}
	return n
}

// Size is the number of leaves stored.
func (h *hashFile) Size() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.size
}

// ReadHashes implements tlog.HashReader. Stored hashes never change, so
// reads need no lock beyond the file's own.
func (h *hashFile) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if _, err := h.f.ReadAt(out[i][:], x*tlog.HashSize); err != nil {
			return nil, fmt.Errorf("tree file: read hash %d: %w", x, err)
		}
	}
	return out, nil
}

// Append adds leaves, writes their hashes and syncs the file before the new
// size becomes visible.
func (h *hashFile) Append(leaves [][]byte) error {
	if len(leaves) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.size
	base := tlog.StoredHashCount(n)
	var pending []tlog.Hash
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x >= base {
				out[i] = pending[x-base]
				continue
			}
			if _, err := h.f.ReadAt(out[i][:], x*tlog.HashSize); err != nil {
				return nil, fmt.Errorf("tree file: read hash %d: %w", x, err)
			}
		}
		return out, nil
	})
	for _, data := range leaves {
		hs, err := tlog.StoredHashes(n, data, r)
		if err != nil {
			return err
		}
		pending = append(pending, hs...)
		n++
	}
	buf := make([]byte, 0, len(pending)*tlog.HashSize)
	for _, x := range pending {
		buf = append(buf, x[:]...)
	}
	if _, err := h.f.WriteAt(buf, base*tlog.HashSize); err != nil {
		return fmt.Errorf("tree file: write: %w", err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("tree file: sync: %w", err)
	}
	h.size = n
	return nil
}

// Reset empties the tree, to rebuild it from the stream.
func (h *hashFile) Reset() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.f.Truncate(0); err != nil {
		return fmt.Errorf("tree file: reset: %w", err)
	}
	h.size = 0
	return h.f.Sync()
}

func (h *hashFile) Close() error { return h.f.Close() }

// memTree is a tree held in memory, for the verifier.
type memTree struct {
	hashes []tlog.Hash
	size   int64
}

func (m *memTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("hash %d not in tree of %d leaves", x, m.size)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// appendLeaf adds one leaf by its record hash.
func (m *memTree) appendLeaf(leaf tlog.Hash) error {
	hs, err := tlog.StoredHashesForRecordHash(m.size, leaf, m)
	if err != nil {
		return err
	}
	m.hashes = append(m.hashes, hs...)
	m.size++
	return nil
}

// leafHash is the recorded hash of leaf n (from 0), as hashed when its
// event was appended.
func (h *hashFile) leafHash(n int64) (tlog.Hash, error) {
	var out tlog.Hash
	if _, err := h.f.ReadAt(out[:], tlog.StoredHashIndex(0, n)*tlog.HashSize); err != nil {
		return out, fmt.Errorf("tree file: read the hash of leaf %d: %w", n, err)
	}
	return out, nil
}
