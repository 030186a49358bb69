// Package transparency makes the ledger tamper-evident.
//
// It owns the Merkle tree over every event of the ledger in stream order
// (RFC 6962 hashing with golang.org/x/mod/sumdb/tlog; a leaf is the exact
// stored bytes of an event), the durable file of the tree's hashes, the
// signing key and the signed checkpoints (golang.org/x/mod/sumdb/note,
// Ed25519), inclusion and consistency proofs, and the verifier that
// recomputes the tree from the stream and checks every checkpoint. It reads
// the ledger only through hoso.Ledger, hoso.DossierReader and
// hoso.CheckpointLog.
package transparency
