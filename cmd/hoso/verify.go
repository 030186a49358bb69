package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/transparency"
)

// runVerify is `hoso verify`: the whole ledger against its data directory
// or a NATS server, or one saved dossier proof offline.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "hoso-data", "the ledger's data directory (its streams are read, never changed; stop hoso serve first, or use --nats-url)")
	natsURL := fs.String("nats-url", "", "verify the ledger on this NATS server or cluster instead of a data directory")
	creds := fs.String("nats-creds", "", "credentials (.creds or NKey seed file) for --nats-url; with --data the ledger's own are used")
	keyArg := fs.String("key", "", "checkpoint verifier key (name+hash+key) or a file holding it (default DATA/checkpoint.key.pub)")
	var kept []string
	fs.Var((*multiFlag)(&kept), "checkpoint", "a signed checkpoint saved earlier (GET /v1/checkpoint?format=note) that the ledger must still extend (repeatable)")
	proofFile := fs.String("proof", "", "check this saved dossier proof (GET /v1/dossiers/{code}/proof) offline; needs --key")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso verify [flags]\n       hoso verify --proof FILE --key KEY\n\nExit status: 0 clean, 1 tampered (the first bad sequence is named), 2 could not verify.\n\nFlags (each also read from HOSO_<NAME>):\n")
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if *proofFile != "" {
		if *keyArg == "" {
			return &exitError{2, errors.New("verify --proof needs --key, the ledger's verifier key")}
		}
		return verifyProofFile(*proofFile, *keyArg, stdout)
	}
	key := *keyArg
	if key == "" {
		if *natsURL != "" {
			return &exitError{2, errors.New("verify --nats-url needs --key, the ledger's verifier key")}
		}
		key = filepath.Join(*dataDir, "checkpoint.key.pub")
	}
	verifier, err := transparency.ParseVerifierKey(key)
	if err != nil {
		return &exitError{2, err}
	}
	cfg := eventstore.Config{ReadOnly: true, URL: *natsURL, Credentials: *creds, Listen: "127.0.0.1:0"}
	treeFile := ""
	if *natsURL == "" {
		if _, err := os.Stat(filepath.Join(*dataDir, "nats")); err != nil {
			return &exitError{2, fmt.Errorf("no ledger in %s: %w", *dataDir, err)}
		}
		cfg.DataDir = *dataDir
		treeFile = filepath.Join(*dataDir, "tree.hashes")
	}
	store, err := eventstore.Open(ctx, cfg)
	if err != nil {
		return &exitError{2, err}
	}
	defer store.Close()
	v := &transparency.Verifier{Ledger: store, Checkpoints: store, Key: verifier, TreeFile: treeFile}
	for _, name := range kept {
		note, err := os.ReadFile(name)
		if err != nil {
			return &exitError{2, fmt.Errorf("checkpoint: %w", err)}
		}
		v.Kept = append(v.Kept, note)
	}
	start := time.Now()
	sum, err := v.Verify(ctx)
	var fault *transparency.Fault
	if errors.As(err, &fault) {
		return &exitError{1, fmt.Errorf("TAMPERED: %w", fault)}
	}
	if err != nil {
		return &exitError{2, fmt.Errorf("verify: %w", err)}
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "ok: %d events of %d dossiers, contiguous; %d checkpoints signed by %s, each consistent with the one before\n",
		sum.Events, sum.Dossiers, sum.Checkpoints, verifier.Name())
	if sum.Latest.Size > 0 {
		fmt.Fprintf(stdout, "latest checkpoint: size %d root %s\n", sum.Latest.Size, base64.StdEncoding.EncodeToString(sum.Latest.Root))
	}
	fmt.Fprintf(stdout, "stream root: size %d root %s\n", sum.Events, sum.Root)
	if len(kept) > 0 {
		fmt.Fprintf(stdout, "the stream extends the %d kept checkpoints\n", len(kept))
	}
	if s := elapsed.Seconds(); s > 0 {
		fmt.Fprintf(stdout, "verified in %s (%.0f events/s)\n", elapsed.Round(time.Millisecond), float64(sum.Events)/s)
	}
	return nil
}

func verifyProofFile(path, keyArg string, stdout io.Writer) error {
	verifier, err := transparency.ParseVerifierKey(keyArg)
	if err != nil {
		return &exitError{2, err}
	}
	f, err := os.Open(path)
	if err != nil {
		return &exitError{2, err}
	}
	defer f.Close()
	p, err := transparency.DecodeDossierProof(f)
	if err != nil {
		return &exitError{2, err}
	}
	cp, err := transparency.VerifyDossierProof(p, verifier)
	if err != nil {
		return &exitError{1, fmt.Errorf("proof of dossier %q FAILS: %w", p.Dossier, err)}
	}
	fmt.Fprintf(stdout, "ok: dossier %s: %d events proven in %s's tree of %d events (checkpoint signed by %s)\n",
		p.Dossier, len(p.Events), cp.Origin, cp.Size, verifier.Name())
	if len(p.PendingSeqs) > 0 {
		fmt.Fprintf(stdout, "not yet covered by that checkpoint: seqs %v\n", p.PendingSeqs)
	}
	return nil
}
