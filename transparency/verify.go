package transparency

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hoso-ledger/hoso"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Fault is evidence of tampering: the first bad sequence of a stream and
// what is wrong there.
type Fault struct {
	Stream  string // HOSO_EVENTS or HOSO_CHECKPOINTS
	Seq     uint64
	Problem string
}

func (f *Fault) Error() string { return fmt.Sprintf("%s seq %d: %s", f.Stream, f.Seq, f.Problem) }

// Summary is what a clean verification saw.
type Summary struct {
	Events      uint64
	Dossiers    int
	Checkpoints int
	// Latest is the newest checkpoint, zero when there is none.
	Latest hoso.Checkpoint
	// Root is the recomputed root of the whole stream.
	Root tlog.Hash
}

// Verifier recomputes the tree from the stream and checks it and every
// checkpoint.
type Verifier struct {
	Ledger      hoso.Ledger
	Checkpoints hoso.CheckpointLog
	Key         note.Verifier
	// TreeFile, when set, is the serving ledger's tree file: its leaf hashes
	// were recorded as events were appended, so a changed event is named
	// exactly even between two checkpoints. Without it, a changed event is
	// located to the range between the last good checkpoint and the first
	// bad one.
	TreeFile string
	// Kept are signed checkpoint notes the auditor saved earlier, outside
	// the operator's reach: the stream must still hash to each of them.
	// They catch a history rewritten and re-signed with the ledger's own
	// key, which the checkpoints stored beside the stream cannot.
	Kept [][]byte
}

// Verify returns a *Fault naming the first bad sequence, another error when
// it could not read the ledger, or the summary of a clean ledger.
func (v *Verifier) Verify(ctx context.Context) (Summary, error) {
	var sum Summary
	var recorded *recordedLeaves
	if v.TreeFile != "" {
		f, err := os.Open(v.TreeFile)
		if err == nil {
			st, serr := f.Stat()
			if serr != nil {
				f.Close()
				return sum, serr
			}
			recorded = &recordedLeaves{f: f, size: leavesIn(st.Size() / tlog.HashSize)}
			defer f.Close()
		} else if !errors.Is(err, os.ErrNotExist) {
			return sum, err
		}
	}
	last, err := v.Ledger.LastSeq(ctx)
	if err != nil {
		return sum, err
	}
	tree := &memTree{hashes: make([]tlog.Hash, 0, 2*last)}
	versions := map[string]int{}
	next := uint64(1)
	var head struct {
		Dossier string `json:"dossier"`
		Version int    `json:"version"`
	}
	err = v.Ledger.Read(ctx, 1, false, func(e hoso.LedgerEntry) error {
		if e.Seq != next {
			return &Fault{Stream: "HOSO_EVENTS", Seq: next, Problem: fmt.Sprintf("missing (deleted or purged): the stream goes from seq %d to %d", next-1, e.Seq)}
		}
		leaf := tlog.RecordHash(e.Data)
		if recorded != nil && int64(e.Seq) <= recorded.size {
			h, err := recorded.leaf(int64(e.Seq - 1))
			if err != nil {
				return err
			}
			if h != leaf {
				return &Fault{Stream: "HOSO_EVENTS", Seq: e.Seq, Problem: "changed: its bytes differ from those hashed when it was appended"}
			}
		}
		head.Dossier, head.Version = "", 0
		if err := json.Unmarshal(e.Data, &head); err != nil || head.Dossier == "" {
			return &Fault{Stream: "HOSO_EVENTS", Seq: e.Seq, Problem: "not a stored event"}
		}
		if prev := versions[head.Dossier]; head.Version != prev+1 {
			return &Fault{Stream: "HOSO_EVENTS", Seq: e.Seq, Problem: fmt.Sprintf("dossier %q: version %d follows version %d (want %d): events reordered or removed", head.Dossier, head.Version, prev, prev+1)}
		}
		versions[head.Dossier] = head.Version
		next++
		return tree.appendLeaf(leaf)
	})
	if err != nil {
		return sum, err
	}
	if next <= last {
		return sum, &Fault{Stream: "HOSO_EVENTS", Seq: next, Problem: fmt.Sprintf("missing (deleted or purged): the stream ends at seq %d but its last sequence is %d", next-1, last)}
	}
	sum.Events, sum.Dossiers = uint64(tree.size), len(versions)
	if sum.Root, err = tlog.TreeHash(tree.size, tree); err != nil {
		return sum, err
	}

	for i, note := range v.Kept {
		cp, err := OpenCheckpoint(note, v.Key)
		if err != nil {
			return sum, fmt.Errorf("kept checkpoint %d: %w", i+1, err)
		}
		if cp.Size > uint64(tree.size) {
			return sum, &Fault{Stream: "HOSO_EVENTS", Seq: uint64(tree.size) + 1, Problem: fmt.Sprintf("missing: a kept checkpoint signed %d events, the stream has %d", cp.Size, tree.size)}
		}
		root, err := tlog.TreeHash(int64(cp.Size), tree)
		if err != nil {
			return sum, err
		}
		if !bytes.Equal(root[:], cp.Root) {
			return sum, &Fault{Stream: "HOSO_EVENTS", Seq: 1, Problem: fmt.Sprintf("changed or reordered: events 1..%d do not hash to the root of the kept checkpoint %d; the history was rewritten since it was signed", cp.Size, cp.Size)}
		}
	}

	var prev hoso.Checkpoint
	err = v.Checkpoints.ReadCheckpoints(ctx, func(e hoso.CheckpointEntry) error {
		cp, err := OpenCheckpoint(e.Note, v.Key)
		if err != nil {
			return &Fault{Stream: "HOSO_CHECKPOINTS", Seq: e.Seq, Problem: err.Error()}
		}
		if cp.Size < prev.Size {
			return &Fault{Stream: "HOSO_CHECKPOINTS", Seq: e.Seq, Problem: fmt.Sprintf("tree size %d after %d: checkpoints go back", cp.Size, prev.Size)}
		}
		if cp.Size > uint64(tree.size) {
			return &Fault{Stream: "HOSO_EVENTS", Seq: uint64(tree.size) + 1, Problem: fmt.Sprintf("missing: checkpoint %d (HOSO_CHECKPOINTS seq %d) signed %d events, the stream has %d", cp.Size, e.Seq, cp.Size, tree.size)}
		}
		root, err := tlog.TreeHash(int64(cp.Size), tree)
		if err != nil {
			return err
		}
		if !bytes.Equal(root[:], cp.Root) {
			return &Fault{Stream: "HOSO_EVENTS", Seq: prev.Size + 1, Problem: fmt.Sprintf(
				"changed or reordered: events %d..%d do not hash to the root signed by checkpoint %d (HOSO_CHECKPOINTS seq %d); the first %d do",
				prev.Size+1, cp.Size, cp.Size, e.Seq, prev.Size)}
		}
		if prev.Size > 0 {
			proof, err := tlog.ProveTree(int64(cp.Size), int64(prev.Size), tree)
			if err != nil {
				return err
			}
			if err := tlog.CheckTree(proof, int64(cp.Size), tlog.Hash(cp.Root), int64(prev.Size), tlog.Hash(prev.Root)); err != nil {
				return &Fault{Stream: "HOSO_CHECKPOINTS", Seq: e.Seq, Problem: fmt.Sprintf("not consistent with checkpoint %d: %v", prev.Size, err)}
			}
		}
		prev = cp
		sum.Checkpoints++
		return nil
	})
	sum.Latest = prev
	return sum, err
}

// recordedLeaves reads the leaf hashes of a tree file in increasing order,
// a window at a time rather than a read per leaf.
type recordedLeaves struct {
	f      *os.File
	size   int64
	start  int64 // file offset of buf
	buf    []byte
	window [1 << 20]byte
}

func (r *recordedLeaves) leaf(n int64) (tlog.Hash, error) {
	var h tlog.Hash
	off := tlog.StoredHashIndex(0, n) * tlog.HashSize
	if off < r.start || off+tlog.HashSize > r.start+int64(len(r.buf)) {
		k, err := r.f.ReadAt(r.window[:], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return h, fmt.Errorf("tree file: %w", err)
		}
		if k < tlog.HashSize {
			return h, fmt.Errorf("tree file: no hash of leaf %d", n)
		}
		r.start, r.buf = off, r.window[:k]
	}
	copy(h[:], r.buf[off-r.start:])
	return h, nil
}

// DecodeDossierProof reads a saved dossier proof strictly: unknown fields
// and missing parts are errors naming the field.
func DecodeDossierProof(r io.Reader) (*hoso.DossierProof, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p hoso.DossierProof
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	if dec.More() {
		return nil, errors.New("proof: data after the proof object")
	}
	switch {
	case p.Dossier == "":
		return nil, errors.New("proof: dossier: missing")
	case p.Checkpoint.Note == "":
		return nil, errors.New("proof: checkpoint.note: missing")
	}
	for i, e := range p.Events {
		if e.Seq == 0 {
			return nil, fmt.Errorf("proof: events[%d].seq: missing", i)
		}
		for j, h := range e.Inclusion {
			if len(h) != tlog.HashSize {
				return nil, fmt.Errorf("proof: events[%d].inclusion[%d]: %d bytes, want %d", i, j, len(h), tlog.HashSize)
			}
		}
	}
	return &p, nil
}

// VerifyDossierProof checks a dossier proof offline with the ledger's
// verifier key: the checkpoint's signature, each event's inclusion in the
// signed tree at its leaf index, and that the events are the dossier's,
// from version 1, contiguous and in order. It returns the checkpoint.
func VerifyDossierProof(p *hoso.DossierProof, key note.Verifier) (hoso.Checkpoint, error) {
	cp, err := OpenCheckpoint([]byte(p.Checkpoint.Note), key)
	if err != nil {
		return cp, err
	}
	if p.Checkpoint.Size != cp.Size || (p.Checkpoint.Root != nil && !bytes.Equal(p.Checkpoint.Root, cp.Root)) {
		return cp, errors.New("checkpoint: size or root differ from the signed note")
	}
	if len(p.Events) == 0 {
		return cp, fmt.Errorf("dossier %q: no events proven", p.Dossier)
	}
	var prevSeq uint64
	for i, e := range p.Events {
		if e.LeafIndex != e.Seq-1 || e.Seq > cp.Size || e.Seq <= prevSeq {
			return cp, fmt.Errorf("seq %d: leaf index %d out of place (tree size %d)", e.Seq, e.LeafIndex, cp.Size)
		}
		proof := make(tlog.RecordProof, len(e.Inclusion))
		for j, h := range e.Inclusion {
			if len(h) != tlog.HashSize {
				return cp, fmt.Errorf("seq %d: inclusion[%d] is not a hash", e.Seq, j)
			}
			copy(proof[j][:], h)
		}
		if err := tlog.CheckRecord(proof, int64(cp.Size), tlog.Hash(cp.Root), int64(e.LeafIndex), tlog.RecordHash(e.Data)); err != nil {
			return cp, fmt.Errorf("seq %d: not in the signed tree with these bytes at this position: %v", e.Seq, err)
		}
		ev, err := hoso.LedgerEntry{Seq: e.Seq, Data: e.Data}.Event()
		if err != nil {
			return cp, err
		}
		if ev.Dossier != p.Dossier || ev.Version != i+1 {
			return cp, fmt.Errorf("seq %d: event of dossier %q version %d, want dossier %q version %d", e.Seq, ev.Dossier, ev.Version, p.Dossier, i+1)
		}
		prevSeq = e.Seq
	}
	return cp, nil
}

// ParseVerifierKey reads a verifier key (name+hash+key), given itself or
// as the name of a file holding it.
func ParseVerifierKey(s string) (note.Verifier, error) {
	key := s
	if b, err := os.ReadFile(s); err == nil {
		key = string(bytes.TrimSpace(b))
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("key: neither a verifier key (name+hash+key) nor a file holding one: %w", err)
	}
	return v, nil
}
