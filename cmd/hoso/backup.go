package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/transparency"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A backup is a directory of four files:
//
//   - events.bin: the stream HOSO_EVENTS, every message in order as
//     uvarint(seq) uvarint(len) and the stored bytes, after a header line;
//   - checkpoints.bin: the stream HOSO_CHECKPOINTS, the signed checkpoint
//     notes, in the same framing;
//   - principals.bin: the token bucket HOSO_TOKENS, each key with its value
//     as JSON (eventstore.TokenBucketEntry), numbered from 1: the
//     principals, revoked ones included, and the hashes of their tokens,
//     never a token (a backup made before it existed has none, and
//     restores no principal);
//   - manifest.json: what they hold (counts, layout, the latest signed
//     checkpoint, the verifier key) and the SHA-256 of each, written last.
//
// The signed checkpoints are what make it trustworthy: restore recomputes
// the Merkle tree from events.bin and refuses a backup whose events do not
// hash to the roots its checkpoints sign, before it writes anything.
const (
	backupFormat       = "hoso-backup/1"
	backupEvents       = "events.bin"
	backupCheckpoints  = "checkpoints.bin"
	backupPrincipals   = "principals.bin"
	backupManifestName = "manifest.json"
)

// backupManifest is manifest.json.
type backupManifest struct {
	Format         string    `json:"format"`
	Created        time.Time `json:"created"`
	Stream         string    `json:"stream"`
	SubjectBuckets int       `json:"subject_buckets"`
	Events         uint64    `json:"events"`
	EventsSHA256   string    `json:"events_sha256"`
	Checkpoints    uint64    `json:"checkpoints"`
	CheckpointsSHA string    `json:"checkpoints_sha256"`
	// Principals counts the token bucket's keys in principals.bin; its
	// digest is empty in a backup without the file.
	Principals    uint64 `json:"principals"`
	PrincipalsSHA string `json:"principals_sha256,omitempty"`
	// Latest is the newest signed checkpoint in checkpoints.bin (size 0:
	// none); Unsigned the events after it, which no signature covers.
	Latest      backupCheckpoint `json:"latest_checkpoint"`
	Unsigned    uint64           `json:"unsigned_events"`
	VerifierKey string           `json:"verifier_key,omitempty"`
}

type backupCheckpoint struct {
	Size uint64 `json:"size"`
	Root string `json:"root,omitempty"`
}

// backupWriter frames records into a file and hashes what it writes.
type backupWriter struct {
	f   *os.File
	w   *bufio.Writer
	sum hash.Hash
	n   uint64
	buf [2 * binary.MaxVarintLen64]byte
}

func createBackupFile(path, kind string) (*backupWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	bw := &backupWriter{f: f, sum: sha256.New()}
	bw.w = bufio.NewWriterSize(io.MultiWriter(f, bw.sum), 1<<20)
	if _, err := bw.w.WriteString(backupFormat + " " + kind + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return bw, nil
}

func (bw *backupWriter) write(seq uint64, data []byte) error {
	k := binary.PutUvarint(bw.buf[:], seq)
	k += binary.PutUvarint(bw.buf[k:], uint64(len(data)))
	if _, err := bw.w.Write(bw.buf[:k]); err != nil {
		return err
	}
	_, err := bw.w.Write(data)
	bw.n++
	return err
}

// close flushes and syncs the file and returns its digest.
func (bw *backupWriter) close() (string, error) {
	err := bw.w.Flush()
	if err == nil {
		err = bw.f.Sync()
	}
	if cerr := bw.f.Close(); err == nil {
		err = cerr
	}
	return hex.EncodeToString(bw.sum.Sum(nil)), err
}

// maxBackupRecord bounds a record's length when reading: the streams'
// messages are at most 64 KiB.
const maxBackupRecord = 1 << 20

// readBackupFile calls fn for every record of a backup file and returns
// the file's SHA-256.
func readBackupFile(path, kind string, fn func(seq uint64, data []byte) error) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, sum), 1<<20)
	head, err := r.ReadString('\n')
	if err != nil || head != backupFormat+" "+kind+"\n" {
		return "", fmt.Errorf("%s: not a %s file of a %s backup", filepath.Base(path), kind, backupFormat)
	}
	var data []byte
	for {
		seq, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || n > maxBackupRecord {
			return "", fmt.Errorf("%s: record of seq %d: bad length", filepath.Base(path), seq)
		}
		if uint64(cap(data)) < n {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(r, data); err != nil {
			return "", fmt.Errorf("%s: record of seq %d: %w", filepath.Base(path), seq, err)
		}
		if err := fn(seq, data); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// runBackup is `hoso backup`: the ledger's streams into a new directory.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "hoso-data", "the data directory of a stopped ledger (read, never changed); a running one is backed up with --nats-url")
	natsURL := fs.String("nats-url", "", "back up the ledger on this NATS server or cluster instead (a running ledger)")
	creds := fs.String("nats-creds", "", "credentials (.creds or NKey seed file) of the ledger's role on --nats-url (the embedded server's: DATA/nats-ledger.nk)")
	keyArg := fs.String("key", "", "the checkpoints' verifier key or a file holding it, recorded in the manifest (default DATA/checkpoint.key.pub)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso backup [flags] DIR\n\nWrites the ledger's events and signed checkpoints into the new directory DIR (docs/operations.md, \"Backup and restore\").\n\nFlags (each also read from HOSO_<NAME>):\n")
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{2, errors.New("backup: give the directory to write")}
	}
	out := fs.Arg(0)
	cfg := eventstore.Config{ReadOnly: true, URL: *natsURL, Credentials: *creds, Listen: "127.0.0.1:0"}
	if *natsURL == "" {
		if _, err := os.Stat(filepath.Join(*dataDir, "nats")); err != nil {
			return &exitError{2, fmt.Errorf("no ledger in %s: %w", *dataDir, err)}
		}
		cfg.DataDir = *dataDir
	}
	verifierKey := strings.TrimSpace(*keyArg)
	if verifierKey == "" && *natsURL == "" {
		verifierKey = filepath.Join(*dataDir, "checkpoint.key.pub")
	}
	if b, err := os.ReadFile(verifierKey); err == nil {
		verifierKey = string(bytes.TrimSpace(b))
	} else if *keyArg == "" {
		verifierKey = ""
	}
	var verifier note.Verifier
	if verifierKey != "" {
		v, err := transparency.ParseVerifierKey(verifierKey)
		if err != nil {
			return &exitError{2, err}
		}
		verifier = v
	}
	if err := os.Mkdir(out, 0o750); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return &exitError{2, err}
		}
		if entries, rerr := os.ReadDir(out); rerr != nil || len(entries) > 0 {
			return &exitError{2, fmt.Errorf("backup: %s exists and is not empty", out)}
		}
	}
	store, err := eventstore.Open(ctx, cfg)
	if err != nil {
		return &exitError{2, err}
	}
	defer store.Close()
	start := time.Now()
	man := backupManifest{Format: backupFormat, Created: start.UTC().Truncate(time.Second), Stream: eventstore.StreamName,
		SubjectBuckets: store.Buckets(), VerifierKey: verifierKey}

	// The checkpoints first: every one of them then signs events the
	// backup holds, since the events are read up to the end after.
	cw, err := createBackupFile(filepath.Join(out, backupCheckpoints), "checkpoints")
	if err != nil {
		return &exitError{2, err}
	}
	err = store.ReadCheckpoints(ctx, func(e hoso.CheckpointEntry) error {
		if verifier != nil {
			if cp, err := transparency.OpenCheckpoint(e.Note, verifier); err == nil && cp.Size >= man.Latest.Size {
				man.Latest = backupCheckpoint{Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root)}
			}
		}
		return cw.write(e.Seq, e.Note)
	})
	man.Checkpoints = cw.n
	sum, cerr := cw.close()
	if err = errors.Join(err, cerr); err != nil {
		return &exitError{2, fmt.Errorf("backup: checkpoints: %w", err)}
	}
	man.CheckpointsSHA = sum

	ew, err := createBackupFile(filepath.Join(out, backupEvents), "events")
	if err != nil {
		return &exitError{2, err}
	}
	err = store.Read(ctx, 1, false, func(e hoso.LedgerEntry) error { return ew.write(e.Seq, e.Data) })
	man.Events = ew.n
	sum, cerr = ew.close()
	if err = errors.Join(err, cerr); err != nil {
		return &exitError{2, fmt.Errorf("backup: events: %w", err)}
	}
	man.EventsSHA256 = sum

	pw, err := createBackupFile(filepath.Join(out, backupPrincipals), "principals")
	if err != nil {
		return &exitError{2, err}
	}
	err = store.ReadTokenBucket(ctx, func(e eventstore.TokenBucketEntry) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return pw.write(pw.n+1, b)
	})
	man.Principals = pw.n
	sum, cerr = pw.close()
	if err = errors.Join(err, cerr); err != nil {
		return &exitError{2, fmt.Errorf("backup: principals: %w", err)}
	}
	man.PrincipalsSHA = sum
	if man.Events > man.Latest.Size {
		man.Unsigned = man.Events - man.Latest.Size
	}
	if err := writeManifest(filepath.Join(out, backupManifestName), man); err != nil {
		return &exitError{2, err}
	}
	fmt.Fprintf(stdout, "backup: %d events and %d checkpoints of %s, and %d keys of %s (principals, token hashes), in %s (%s)\n",
		man.Events, man.Checkpoints, eventstore.StreamName, man.Principals, eventstore.TokenBucket, out, time.Since(start).Round(time.Millisecond))
	switch {
	case verifier == nil:
		fmt.Fprintln(stdout, "no verifier key (--key): the manifest names no latest checkpoint; restore needs --key")
	case man.Latest.Size == 0:
		fmt.Fprintln(stdout, "no signed checkpoint: nothing in this backup is covered by a signature")
	default:
		fmt.Fprintf(stdout, "latest checkpoint: size %d root %s\n", man.Latest.Size, man.Latest.Root)
	}
	if man.Unsigned > 0 && man.Latest.Size > 0 {
		fmt.Fprintf(stdout, "%d events after the latest checkpoint are not covered by a signature (back up a stopped ledger, whose last checkpoint covers every event, to have none)\n", man.Unsigned)
	}
	return nil
}

func writeManifest(path string, man backupManifest) error {
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// backupFault is a backup that is not what its signatures say: damaged or
// altered. restore refuses it (exit status 1, as verify's tampering).
func backupFault(format string, args ...any) error {
	return &exitError{1, fmt.Errorf("backup refused, damaged or altered: "+format, args...)}
}

// checkedBackup is what checkBackup read and proved.
type checkedBackup struct {
	man         backupManifest
	checkpoints []hoso.Checkpoint // ascending size, each verified
	notes       []hoso.CheckpointEntry
	root        tlog.Hash // of every event in the backup
	principals  []eventstore.TokenBucketEntry
}

// checkBackup reads a backup through without writing anything: the files
// must match the manifest's digests and counts, the events' sequences run
// from 1 without a gap, every event names its dossier, and the events hash,
// at the size of each checkpoint, to the root that checkpoint signs with
// key.
func checkBackup(dir string, key note.Verifier) (*checkedBackup, error) {
	b, err := os.ReadFile(filepath.Join(dir, backupManifestName))
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("backup: %w", err)}
	}
	cb := &checkedBackup{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cb.man); err != nil {
		return nil, backupFault("%s: %v", backupManifestName, err)
	}
	man := &cb.man
	if man.Format != backupFormat || man.Stream != eventstore.StreamName {
		return nil, &exitError{2, fmt.Errorf("backup: %s: format %q of stream %q, want %q of %s", backupManifestName, man.Format, man.Stream, backupFormat, eventstore.StreamName)}
	}
	var faults []error
	sum, err := readBackupFile(filepath.Join(dir, backupCheckpoints), "checkpoints", func(seq uint64, data []byte) error {
		if uint64(len(cb.notes)+1) != seq {
			return backupFault("%s: checkpoint record %d has seq %d", backupCheckpoints, len(cb.notes)+1, seq)
		}
		note := bytes.Clone(data)
		cb.notes = append(cb.notes, hoso.CheckpointEntry{Seq: seq, Note: note})
		cp, err := transparency.OpenCheckpoint(note, key)
		if err != nil {
			return backupFault("%s: checkpoint of seq %d: %v", backupCheckpoints, seq, err)
		}
		if n := len(cb.checkpoints); n > 0 && cp.Size < cb.checkpoints[n-1].Size {
			return backupFault("%s: checkpoint of seq %d signs %d events after one of %d: checkpoints go back", backupCheckpoints, seq, cp.Size, cb.checkpoints[n-1].Size)
		}
		cb.checkpoints = append(cb.checkpoints, cp)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sum != man.CheckpointsSHA || uint64(len(cb.notes)) != man.Checkpoints {
		faults = append(faults, fmt.Errorf("%s: %d checkpoints with SHA-256 %s; the manifest says %d with %s", backupCheckpoints, len(cb.notes), sum, man.Checkpoints, man.CheckpointsSHA))
	}

	var roots transparency.Roots
	next := 0 // the first checkpoint not yet checked
	check := func() error {
		for ; next < len(cb.checkpoints) && cb.checkpoints[next].Size == uint64(roots.Size()); next++ {
			cp := cb.checkpoints[next]
			if root := roots.Root(); !bytes.Equal(root[:], cp.Root) {
				return backupFault("events 1..%d do not hash to the root signed by checkpoint %d (%s seq %d): an event was changed, removed or reordered", cp.Size, cp.Size, backupCheckpoints, next+1)
			}
		}
		return nil
	}
	if err := check(); err != nil {
		return nil, err
	}
	sum, err = readBackupFile(filepath.Join(dir, backupEvents), "events", func(seq uint64, data []byte) error {
		if want := uint64(roots.Size()) + 1; seq != want {
			return backupFault("%s: seq %d follows seq %d: events missing", backupEvents, seq, want-1)
		}
		if _, err := (hoso.LedgerEntry{Seq: seq, Data: data}).Dossier(); err != nil {
			return backupFault("%s: seq %d is not a stored event: %v", backupEvents, seq, err)
		}
		roots.Append(tlog.RecordHash(data))
		return check()
	})
	if err != nil {
		return nil, err
	}
	if next < len(cb.checkpoints) {
		cp := cb.checkpoints[next]
		return nil, backupFault("checkpoint %d (%s seq %d) signs %d events; %s holds %d: events missing", cp.Size, backupCheckpoints, next+1, cp.Size, backupEvents, roots.Size())
	}
	if sum != man.EventsSHA256 || uint64(roots.Size()) != man.Events {
		faults = append(faults, fmt.Errorf("%s: %d events with SHA-256 %s; the manifest says %d with %s", backupEvents, roots.Size(), sum, man.Events, man.EventsSHA256))
	}
	if err := checkBackupPrincipals(dir, cb); err != nil {
		faults = append(faults, err)
	}
	if len(faults) > 0 {
		return nil, backupFault("%v", errors.Join(faults...))
	}
	if n := len(cb.checkpoints); n > 0 {
		latest := cb.checkpoints[n-1]
		if man.Latest.Size != 0 && (man.Latest.Size != latest.Size || man.Latest.Root != base64.StdEncoding.EncodeToString(latest.Root)) {
			return nil, backupFault("%s names checkpoint %d %s as the latest; the latest in %s is %d %s", backupManifestName,
				man.Latest.Size, man.Latest.Root, backupCheckpoints, latest.Size, base64.StdEncoding.EncodeToString(latest.Root))
		}
	}
	cb.root = roots.Root()
	return cb, nil
}

// checkBackupPrincipals reads principals.bin, which no signature covers
// but the manifest's digest does, and checks every key as the ledger writes
// them. A backup made before the file existed has neither file nor digest.
func checkBackupPrincipals(dir string, cb *checkedBackup) error {
	man := &cb.man
	path := filepath.Join(dir, backupPrincipals)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && man.PrincipalsSHA == "" && man.Principals == 0 {
		return nil
	}
	sum, err := readBackupFile(path, "principals", func(seq uint64, data []byte) error {
		if uint64(len(cb.principals)+1) != seq {
			return fmt.Errorf("%s: record %d has seq %d", backupPrincipals, len(cb.principals)+1, seq)
		}
		var e eventstore.TokenBucketEntry
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return fmt.Errorf("%s: record %d: %w", backupPrincipals, seq, err)
		}
		if err := e.Check(); err != nil {
			return fmt.Errorf("%s: record %d: %w", backupPrincipals, seq, err)
		}
		cb.principals = append(cb.principals, e)
		return nil
	})
	if err != nil {
		return err
	}
	if sum != man.PrincipalsSHA || uint64(len(cb.principals)) != man.Principals {
		return fmt.Errorf("%s: %d keys with SHA-256 %s; the manifest says %d with %s", backupPrincipals, len(cb.principals), sum, man.Principals, man.PrincipalsSHA)
	}
	return nil
}

// backupEntries reads the events of a checked backup again, for the
// restore.
func backupEntries(dir string) iter.Seq2[hoso.LedgerEntry, error] {
	return func(yield func(hoso.LedgerEntry, error) bool) {
		stop := errors.New("stop")
		_, err := readBackupFile(filepath.Join(dir, backupEvents), "events", func(seq uint64, data []byte) error {
			if !yield(hoso.LedgerEntry{Seq: seq, Data: bytes.Clone(data)}, nil) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			yield(hoso.LedgerEntry{}, err)
		}
	}
}

// runRestore is `hoso restore`: a backup checked against its signed
// checkpoints, then written into an empty ledger, which is verified.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hoso restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "hoso-data", "the data directory of the new ledger (created; its stream must be empty)")
	natsURL := fs.String("nats-url", "", "restore into the streams on this NATS server or cluster instead (they must be empty or absent)")
	creds := fs.String("nats-creds", "", "credentials (.creds or NKey seed file) of the ledger's role on --nats-url")
	replicas := fs.Int("replicas", 1, "replicas of the streams it creates (3 on a cluster)")
	keyArg := fs.String("key", "", "the verifier key the checkpoints must be signed with, or a file holding it (default: the one the backup's manifest names; pin your own)")
	signingKey := fs.String("checkpoint-key", "", "the ledger's checkpoint signing key to install as DATA/checkpoint.key (with --data), so that the restored ledger goes on with its chain of checkpoints")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hoso restore [flags] DIR\n\nChecks the backup in DIR against its signed checkpoints, writes it into an empty ledger and verifies that ledger.\nExit status: 0 restored and verified, 1 the backup (or the restored ledger) is damaged or altered, 2 could not restore.\n\nFlags (each also read from HOSO_<NAME>):\n")
		fs.PrintDefaults()
	}
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{2, errors.New("restore: give the backup directory")}
	}
	dir := fs.Arg(0)
	key := *keyArg
	keySource := "--key"
	if key == "" {
		b, err := os.ReadFile(filepath.Join(dir, backupManifestName))
		if err != nil {
			return &exitError{2, fmt.Errorf("backup: %w", err)}
		}
		var man struct {
			VerifierKey string `json:"verifier_key"`
		}
		if err := json.Unmarshal(b, &man); err != nil || man.VerifierKey == "" {
			return &exitError{2, fmt.Errorf("restore: the backup's manifest names no verifier key: give --key")}
		}
		key, keySource = man.VerifierKey, "the backup's manifest; pin your own with --key"
	}
	verifier, err := transparency.ParseVerifierKey(key)
	if err != nil {
		return &exitError{2, err}
	}
	var signer *transparency.Key
	if *signingKey != "" {
		if *natsURL != "" {
			return &exitError{2, errors.New("restore: --checkpoint-key installs the key in --data's directory; with --nats-url give it to hoso serve")}
		}
		b, err := os.ReadFile(*signingKey)
		if err != nil {
			return &exitError{2, err}
		}
		if signer, err = transparency.ParseKey(string(bytes.TrimSpace(b))); err != nil {
			return &exitError{2, err}
		}
		if signer.Verifier.Name() != verifier.Name() || signer.Verifier.KeyHash() != verifier.KeyHash() {
			return &exitError{2, fmt.Errorf("restore: --checkpoint-key is the key of %s, not of the verifier key %s", signer.VerifierKey, verifier.Name())}
		}
	}

	start := time.Now()
	cb, err := checkBackup(dir, verifier)
	if err != nil {
		return err
	}
	man := cb.man
	fmt.Fprintf(stdout, "backup checked: %d events, %d checkpoints signed by %s (key from %s), each matching the events it signs\n",
		man.Events, len(cb.checkpoints), verifier.Name(), keySource)
	var latest hoso.Checkpoint
	if n := len(cb.checkpoints); n > 0 {
		latest = cb.checkpoints[n-1]
		if unsigned := man.Events - latest.Size; unsigned > 0 {
			fmt.Fprintf(stdout, "%d events after the latest checkpoint (size %d) are covered by no signature, only by the manifest's digest\n", unsigned, latest.Size)
		}
	} else {
		fmt.Fprintln(stdout, "the backup holds no signed checkpoint: nothing in it is covered by a signature, only by the manifest's digest")
	}

	cfg := eventstore.Config{URL: *natsURL, Credentials: *creds, Replicas: *replicas, Listen: "127.0.0.1:0", SubjectBuckets: man.SubjectBuckets}
	if *natsURL == "" {
		if err := os.MkdirAll(*dataDir, 0o750); err != nil {
			return &exitError{2, err}
		}
		cfg.DataDir = *dataDir
		if signer != nil {
			if err := installKey(*dataDir, *signingKey, signer); err != nil {
				return &exitError{2, err}
			}
		}
	}
	store, err := eventstore.Open(ctx, cfg)
	if err != nil {
		return &exitError{2, err}
	}
	defer store.Close()
	if store.Buckets() != man.SubjectBuckets {
		return &exitError{2, fmt.Errorf("restore: the target stream has %d subject buckets, the backup %d; restore into an empty ledger", store.Buckets(), man.SubjectBuckets)}
	}
	if n, err := store.CheckpointCount(ctx); err != nil || n > 0 {
		return &exitError{2, errors.Join(err, fmt.Errorf("restore: stream %s already holds %d checkpoints: restore only into an empty ledger", eventstore.CheckpointStreamName, n))}
	}
	if err := store.CheckTokenBucketEmpty(ctx); err != nil {
		return &exitError{2, fmt.Errorf("restore: %w", err)}
	}
	n, err := store.RestoreEvents(ctx, backupEntries(dir))
	if err != nil {
		return &exitError{2, fmt.Errorf("%w (%d events restored; remove the target's streams before trying again)", err, n)}
	}
	for i, e := range cb.notes {
		if err := store.AppendCheckpoint(ctx, cb.checkpoints[i].Size, e.Note); err != nil {
			return &exitError{2, fmt.Errorf("restore: %w", err)}
		}
	}
	if err := store.RestoreTokenBucket(ctx, cb.principals); err != nil {
		return &exitError{2, fmt.Errorf("restore: %w", err)}
	}
	target := *dataDir
	if *natsURL != "" {
		target = *natsURL
	}
	fmt.Fprintf(stdout, "restored %d events, %d checkpoints and %d keys of %s into %s (%s)\n", n, len(cb.notes), len(cb.principals), eventstore.TokenBucket, target, time.Since(start).Round(time.Millisecond))

	// What hoso verify does, with the backup's latest checkpoint kept.
	v := &transparency.Verifier{Ledger: store, Checkpoints: store, Key: verifier}
	if latest.Note != "" {
		v.Kept = [][]byte{[]byte(latest.Note)}
	}
	sum, err := v.Verify(ctx)
	var fault *transparency.Fault
	if errors.As(err, &fault) {
		return &exitError{1, fmt.Errorf("the restored ledger does not verify: TAMPERED: %w", fault)}
	}
	if err != nil {
		return &exitError{2, fmt.Errorf("verify the restored ledger: %w", err)}
	}
	if sum.Root != cb.root {
		return &exitError{1, fmt.Errorf("the restored stream's root %s is not the backup's %s", sum.Root, cb.root)}
	}
	fmt.Fprintf(stdout, "ok: %d events of %d dossiers, contiguous; %d checkpoints signed by %s, each consistent with the one before\n",
		sum.Events, sum.Dossiers, sum.Checkpoints, verifier.Name())
	if latest.Size > 0 {
		fmt.Fprintf(stdout, "latest checkpoint: size %d root %s, matched by the restored stream\n", latest.Size, base64.StdEncoding.EncodeToString(latest.Root))
	}
	fmt.Fprintf(stdout, "stream root: size %d root %s\n", sum.Events, sum.Root)
	if signer == nil && *natsURL == "" {
		fmt.Fprintf(stdout, "copy the ledger's checkpoint.key into %s before hoso serve (or pass --checkpoint-key): without it the ledger starts a new key and a new chain of checkpoints\n", *dataDir)
	}
	return nil
}

// installKey writes the signing key and its verifier key into the data
// directory, refusing to replace a different one.
func installKey(dataDir, from string, key *transparency.Key) error {
	path := filepath.Join(dataDir, "checkpoint.key")
	if have, err := os.ReadFile(path); err == nil {
		other, err := transparency.ParseKey(string(bytes.TrimSpace(have)))
		if err != nil || other.VerifierKey != key.VerifierKey {
			return fmt.Errorf("restore: %s holds another key; remove it or restore into a new directory", path)
		}
		return nil
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	return os.WriteFile(path+".pub", []byte(key.VerifierKey+"\n"), 0o644)
}
