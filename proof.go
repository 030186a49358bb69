package hoso

import "context"

// Checkpoint is a signed statement of the ledger's Merkle tree: the first
// Size events of the stream hash to Root. Note is the whole signed note
// (origin line, size, base64 root, blank line, signatures), exactly as
// signed, so that anyone with the verifier key can check it.
type Checkpoint struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root"`
	Note   string `json:"note"`
}

// ProvenEvent is one event of a dossier proof: its leaf index in the tree
// (seq - 1), the exact stored bytes, and the inclusion proof of the leaf in
// the tree of the proof's checkpoint.
type ProvenEvent struct {
	Seq       uint64   `json:"seq"`
	LeafIndex uint64   `json:"leaf_index"`
	Data      []byte   `json:"data"`
	Inclusion [][]byte `json:"inclusion"`
}

// DossierProof proves that a dossier's events are in the ledger, unchanged
// and in order, as of a signed checkpoint. Events appended after the
// checkpoint are listed in PendingSeqs: the next checkpoint covers them.
type DossierProof struct {
	Dossier     string        `json:"dossier"`
	Checkpoint  Checkpoint    `json:"checkpoint"`
	Events      []ProvenEvent `json:"events"`
	PendingSeqs []uint64      `json:"pending_seqs,omitempty"`
}

// ConsistencyProof proves that the tree of size To extends the tree of size
// From: nothing among the first From events changed.
type ConsistencyProof struct {
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	FromRoot []byte   `json:"from_root"`
	ToRoot   []byte   `json:"to_root"`
	Proof    [][]byte `json:"proof"`
}

// ProofService answers checkpoints and proofs over the ledger's tree.
type ProofService interface {
	// VerifierKey is the public key that verifies checkpoint signatures,
	// in signed-note verifier format (name+hash+key).
	VerifierKey() string
	// LatestCheckpoint returns the newest signed checkpoint, or ENOTFOUND.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// CheckpointAtOrAfter returns the oldest checkpoint whose tree covers
	// seq, or ENOTFOUND when no checkpoint covers it yet. A read model at
	// as_of_seq is consistent with that checkpoint.
	CheckpointAtOrAfter(ctx context.Context, seq uint64) (Checkpoint, error)
	// DossierProof proves a dossier's events against the latest checkpoint.
	DossierProof(ctx context.Context, code string) (*DossierProof, error)
	// ConsistencyProof proves that tree size to extends tree size from;
	// both at most the latest checkpoint's size.
	ConsistencyProof(ctx context.Context, from, to uint64) (*ConsistencyProof, error)
}

// DossierReader gives one dossier's entries, exact bytes and sequences, in
// stream order. The event store implements it.
type DossierReader interface {
	ReadDossier(ctx context.Context, code string) ([]LedgerEntry, error)
}

// CheckpointEntry is one message of the checkpoint log: its position there
// and the signed note.
type CheckpointEntry struct {
	Seq  uint64
	Note []byte
}

// CheckpointLog keeps signed checkpoints, append-only. The event store
// implements it with a second stream.
type CheckpointLog interface {
	// AppendCheckpoint stores the signed note of the tree of size size; a
	// second append for the same size is a no-op.
	AppendCheckpoint(ctx context.Context, size uint64, note []byte) error
	// ReadCheckpoints calls fn for every stored checkpoint, oldest first.
	ReadCheckpoints(ctx context.Context, fn func(CheckpointEntry) error) error
}
