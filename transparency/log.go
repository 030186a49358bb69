package transparency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"golang.org/x/mod/sumdb/tlog"
)

// Defaults of a Log.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
	DefaultRetryInterval      = 200 * time.Millisecond
	DefaultBatchSize          = 4096
	DefaultLinger             = 10 * time.Millisecond
)

// maxRetryInterval bounds the doubling pauses after failures.
const maxRetryInterval = 10 * time.Second

// Log maintains the Merkle tree of the ledger and its signed checkpoints.
// A goroutine started by Open follows the stream, hashes new events in
// batches into the tree file, and signs a checkpoint every CheckpointEvery
// events or CheckpointInterval, whichever comes first. Appends never wait
// for it. It serves checkpoints and proofs as a hoso.ProofService.
type Log struct {
	Ledger      hoso.Ledger
	Dossiers    hoso.DossierReader
	Checkpoints hoso.CheckpointLog
	Key         *Key
	// TreeFile is where the tree's hashes are kept; deleting it only costs
	// a rebuild from the stream.
	TreeFile string

	CheckpointEvery    uint64
	CheckpointInterval time.Duration
	// RetryInterval is the first pause after reading the stream or
	// signing failed; it doubles up to 10 s while the failures last.
	RetryInterval time.Duration
	// BatchSize bounds the events hashed and synced to the tree file at
	// once.
	BatchSize int
	// Linger is how long a batch waits for more events once its first
	// has arrived: events arriving one by one are then synced to the tree
	// file a few dozen at a time instead of one each.
	Linger time.Duration
	Logger *slog.Logger
	// VerifyRate, when positive, starts continuous verification
	// (reverify.go): events a second re-read from the stream and checked
	// against the leaf hashes recorded when they were appended.
	VerifyRate float64
	// VerifyStateFile keeps continuous verification's position and any
	// fault it found across restarts; empty keeps nothing.
	VerifyStateFile string

	tree     *hashFile
	reverify *reverifier

	mu          sync.RWMutex
	checkpoints []hoso.Checkpoint // signed by Key, ascending size
	lastSigned  time.Time
	halted      error // set when the stream no longer extends the tree

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ hoso.ProofService = (*Log)(nil)

// Open loads the tree file and the stored checkpoints and starts following
// the stream.
func (l *Log) Open(ctx context.Context) error {
	if l.Key == nil || l.Ledger == nil || l.Checkpoints == nil || l.TreeFile == "" {
		return errors.New("transparency log: Ledger, Checkpoints, Key and TreeFile are required")
	}
	if l.CheckpointEvery == 0 {
		l.CheckpointEvery = DefaultCheckpointEvery
	}
	if l.CheckpointInterval <= 0 {
		l.CheckpointInterval = DefaultCheckpointInterval
	}
	if l.RetryInterval <= 0 {
		l.RetryInterval = DefaultRetryInterval
	}
	if l.Linger <= 0 {
		l.Linger = DefaultLinger
	}
	if l.BatchSize <= 0 {
		l.BatchSize = DefaultBatchSize
	}
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	tree, err := openHashFile(l.TreeFile)
	if err != nil {
		return err
	}
	l.tree = tree
	err = l.Checkpoints.ReadCheckpoints(ctx, func(e hoso.CheckpointEntry) error {
		cp, err := OpenCheckpoint(e.Note, l.Key.Verifier)
		if err != nil {
			l.Logger.Error("checkpoint stream holds a checkpoint this key does not verify; run hoso verify",
				"checkpoint_seq", e.Seq, "err", err)
			return nil
		}
		if n := len(l.checkpoints); n > 0 && cp.Size <= l.checkpoints[n-1].Size {
			return nil
		}
		l.checkpoints = append(l.checkpoints, cp)
		return nil
	})
	if err != nil {
		tree.Close()
		return err
	}
	// The tree file is a cache of the stream: if it disagrees with our own
	// latest checkpoint, rebuild it rather than trust it.
	if cp, ok := l.latest(); ok && uint64(tree.Size()) >= cp.Size {
		root, err := tlog.TreeHash(int64(cp.Size), tree)
		if err != nil || !bytes.Equal(root[:], cp.Root) {
			l.Logger.Warn("tree file disagrees with the latest checkpoint; rebuilding it from the stream",
				"checkpoint_size", cp.Size, "err", err)
			if err := tree.Reset(); err != nil {
				tree.Close()
				return err
			}
		}
	}
	if l.VerifyRate > 0 {
		if err := l.openReverifier(ctx); err != nil {
			tree.Close()
			return err
		}
	}
	ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Go(func() { l.run(ctx) })
	if l.reverify != nil {
		l.wg.Go(func() { l.reverify.run(ctx) })
	}
	return nil
}

// Close stops following the stream, hashes what was appended meanwhile,
// signs a last checkpoint, and closes the tree file. Call it before closing
// the store and after closing the doors, so the last checkpoint covers
// every event.
func (l *Log) Close() error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if l.Halted() == nil {
		err = l.catchUp(ctx)
	}
	err = errors.Join(err, l.checkpoint(ctx, true))
	if l.reverify != nil {
		err = errors.Join(err, l.reverify.save())
	}
	return errors.Join(err, l.tree.Close())
}

// TreeSize is the number of events hashed so far.
func (l *Log) TreeSize() uint64 { return uint64(l.tree.Size()) }

// Halted is the reason the tree stopped growing, nil while it follows the
// stream.
func (l *Log) Halted() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.halted
}

// run follows the stream until ctx ends or the stream no longer extends
// the tree; while the stream cannot be read it retries with growing pauses.
func (l *Log) run(ctx context.Context) {
	pause := l.RetryInterval
	for l.Halted() == nil {
		size := l.tree.Size()
		err := l.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		var gap *Fault
		if errors.As(err, &gap) {
			l.halt(err)
			l.Logger.Error("ledger stream no longer extends the tree; tree and checkpoints stop here; run hoso verify", "err", err)
			return
		}
		if l.Halted() != nil {
			return // a checkpoint found the stream rewritten
		}
		if l.tree.Size() > size {
			pause = l.RetryInterval
		}
		// While the stream is unreachable, back off rather than log five
		// times a second.
		l.Logger.Warn("tree: read the stream", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxRetryInterval)
	}
}

func (l *Log) halt(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.halted = err
}

// follow hashes the events past the tree's size into it as they arrive,
// each batch what arrived while the previous one was written (lingering
// for more up to Linger), until ctx ends, reading fails, the stream skips
// an event (a *Fault) or a checkpoint halts the tree (nil). Checkpoints
// are signed after each batch and when CheckpointInterval passes with
// events not yet signed.
func (l *Log) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	b := l.newLeaves()
	arrived := make(chan hoso.LedgerEntry, l.BatchSize)
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		readErr = l.Ledger.Read(ctx, b.next, true, func(e hoso.LedgerEntry) error {
			select {
			case arrived <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	defer func() {
		cancel()
		<-done
	}()

	due := time.NewTimer(0)
	defer due.Stop()
	var (
		signPause time.Duration // after a failed checkpoint; 0 after a good one
		signAfter time.Time     // no attempt before, after a failure
	)
	sign := func() {
		if time.Now().After(signAfter) {
			// Not cut short by Close: a batch cut at a CheckpointEvery-th
			// event gets its checkpoint even when Close comes meanwhile.
			signCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := l.checkpoint(signCtx, false)
			cancel()
			if err != nil {
				signPause = min(max(2*signPause, l.RetryInterval), maxRetryInterval)
				signAfter = time.Now().Add(signPause)
				l.Logger.Warn("checkpoint", "err", err, "retry_in", signPause)
			} else {
				signPause, signAfter = 0, time.Time{}
			}
		}
		if d, ok := l.nextCheckpointIn(); ok {
			due.Reset(max(d, time.Until(signAfter)))
		} else {
			due.Stop()
		}
	}
	// write appends the batch to the tree and signs what is due; with a
	// Fault, the events before the gap are still hashed.
	write := func(err error) error {
		if ferr := b.flush(); ferr != nil {
			return errors.Join(err, ferr)
		}
		sign()
		return err
	}
	for l.Halted() == nil {
		select {
		case e := <-arrived:
			if err := b.add(e); err != nil {
				return write(err)
			}
		fill:
			for !b.full() {
				select {
				case e := <-arrived:
					if err := b.add(e); err != nil {
						return write(err)
					}
				default:
					break fill
				}
			}
			if err := write(l.linger(b, arrived, done)); err != nil {
				return err
			}
		case <-done:
			// The read stopped: hash what it left, then say why.
			for len(arrived) > 0 {
				if err := b.add(<-arrived); err != nil {
					return write(err)
				}
				if b.full() {
					if err := write(nil); err != nil {
						return err
					}
				}
			}
			return write(readErr)
		case <-due.C:
			sign()
		}
	}
	return nil
}

// linger adds what arrives to b for up to Linger, until b is full or the
// read stops.
func (l *Log) linger(b *leaves, arrived <-chan hoso.LedgerEntry, done <-chan struct{}) error {
	if b.full() {
		return nil
	}
	timer := time.NewTimer(l.Linger)
	defer timer.Stop()
	for !b.full() {
		select {
		case e := <-arrived:
			if err := b.add(e); err != nil {
				return err
			}
		case <-timer.C:
			return nil
		case <-done:
			return nil
		}
	}
	return nil
}

// nextCheckpointIn is when CheckpointInterval makes the next checkpoint
// due, if events wait for one.
func (l *Log) nextCheckpointIn() (time.Duration, bool) {
	size := uint64(l.tree.Size())
	l.mu.RLock()
	defer l.mu.RUnlock()
	var lastSize uint64
	if n := len(l.checkpoints); n > 0 {
		lastSize = l.checkpoints[n-1].Size
	}
	if size <= lastSize || l.halted != nil {
		return 0, false
	}
	return time.Until(l.lastSigned.Add(l.CheckpointInterval)), true
}

// leaves is a batch of events for the tree: their bytes, and the sequence
// the next one must have.
type leaves struct {
	tree  *hashFile
	next  uint64
	data  [][]byte
	max   int    // BatchSize
	every uint64 // CheckpointEvery
}

func (l *Log) newLeaves() *leaves {
	return &leaves{tree: l.tree, next: uint64(l.tree.Size()) + 1, data: make([][]byte, 0, l.BatchSize),
		max: l.BatchSize, every: l.CheckpointEvery}
}

// add takes the next event, or answers a Fault if the stream skips one:
// the tree never grows past an event that is not contiguous.
func (b *leaves) add(e hoso.LedgerEntry) error {
	if e.Seq != b.next {
		return &Fault{Stream: "HOSO_EVENTS", Seq: b.next, Problem: fmt.Sprintf("missing: the stream goes from seq %d to %d", b.next-1, e.Seq)}
	}
	b.data = append(b.data, e.Data)
	b.next++
	return nil
}

// full reports whether the batch is cut here: at BatchSize events, and at
// every CheckpointEvery-th event, so that checkpoints fall on those sizes
// however the events arrived.
func (b *leaves) full() bool {
	return len(b.data) >= b.max || (len(b.data) > 0 && (b.next-1)%b.every == 0)
}

// flush appends the batch to the tree file.
func (b *leaves) flush() error {
	if err := b.tree.Append(b.data); err != nil {
		return err
	}
	clear(b.data)
	b.data = b.data[:0]
	return nil
}

// catchUp hashes every event past the tree's size, in batches.
func (l *Log) catchUp(ctx context.Context) error {
	last, err := l.Ledger.LastSeq(ctx)
	if err != nil {
		return err
	}
	if last <= uint64(l.tree.Size()) {
		return nil
	}
	b := l.newLeaves()
	err = l.Ledger.Read(ctx, b.next, false, func(e hoso.LedgerEntry) error {
		if err := b.add(e); err != nil {
			return err
		}
		if !b.full() {
			return nil
		}
		if err := b.flush(); err != nil {
			return err
		}
		return l.checkpoint(ctx, false)
	})
	if ferr := b.flush(); err == nil {
		err = ferr
	}
	return err
}

// checkpoint signs and stores a checkpoint of the tree when enough events or
// time passed since the last one (or always, with force, if the tree grew).
func (l *Log) checkpoint(ctx context.Context, force bool) error {
	size := l.tree.Size()
	l.mu.RLock()
	var last hoso.Checkpoint
	if n := len(l.checkpoints); n > 0 {
		last = l.checkpoints[n-1]
	}
	lastSize := last.Size
	due := uint64(size)%l.CheckpointEvery == 0 || uint64(size)-lastSize >= l.CheckpointEvery ||
		time.Since(l.lastSigned) >= l.CheckpointInterval
	l.mu.RUnlock()
	if uint64(size) <= lastSize || (!force && !due) {
		return nil
	}
	if l.Halted() != nil {
		return nil
	}
	// Never sign a tree that does not extend the last signed one: if the
	// stream was rewritten under the tree file, stop and say so.
	if lastSize > 0 {
		prev, err := tlog.TreeHash(int64(lastSize), l.tree)
		if err != nil {
			return err
		}
		if !bytes.Equal(prev[:], last.Root) {
			err := &Fault{Stream: "HOSO_EVENTS", Seq: 1, Problem: fmt.Sprintf("the first %d events no longer hash to checkpoint %d's root", lastSize, lastSize)}
			l.mu.Lock()
			l.halted = err
			l.mu.Unlock()
			l.Logger.Error("ledger stream no longer matches its last checkpoint; no more checkpoints; run hoso verify", "err", err)
			return nil
		}
	}
	root, err := tlog.TreeHash(size, l.tree)
	if err != nil {
		return err
	}
	cp, err := l.Key.Sign(size, root)
	if err != nil {
		return err
	}
	if err := l.Checkpoints.AppendCheckpoint(ctx, cp.Size, []byte(cp.Note)); err != nil {
		return err
	}
	l.mu.Lock()
	l.checkpoints = append(l.checkpoints, cp)
	l.lastSigned = time.Now()
	l.mu.Unlock()
	return nil
}

func (l *Log) latest() (hoso.Checkpoint, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.checkpoints) == 0 {
		return hoso.Checkpoint{}, false
	}
	return l.checkpoints[len(l.checkpoints)-1], true
}

// VerifierKey is the public key of the checkpoints' signatures.
func (l *Log) VerifierKey() string { return l.Key.VerifierKey }

// LatestCheckpoint returns the newest signed checkpoint.
func (l *Log) LatestCheckpoint(ctx context.Context) (hoso.Checkpoint, error) {
	cp, ok := l.latest()
	if !ok {
		return hoso.Checkpoint{}, hoso.Errorf(hoso.ENOTFOUND, "no checkpoint yet")
	}
	return cp, nil
}

// CheckpointAtOrAfter returns the oldest checkpoint whose tree covers seq.
func (l *Log) CheckpointAtOrAfter(ctx context.Context, seq uint64) (hoso.Checkpoint, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i := sort.Search(len(l.checkpoints), func(i int) bool { return l.checkpoints[i].Size >= seq })
	if i == len(l.checkpoints) {
		return hoso.Checkpoint{}, hoso.Errorf(hoso.ENOTFOUND, "no checkpoint covers seq %d yet", seq)
	}
	return l.checkpoints[i], nil
}

// DossierProof proves a dossier's events against the latest checkpoint.
func (l *Log) DossierProof(ctx context.Context, code string) (*hoso.DossierProof, error) {
	if l.Dossiers == nil {
		return nil, errors.New("transparency log: no dossier reader")
	}
	entries, err := l.Dossiers.ReadDossier(ctx, code)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, hoso.Errorf(hoso.ENOTFOUND, "dossier %q not found", code)
	}
	cp, err := l.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	p := &hoso.DossierProof{Dossier: code, Checkpoint: cp, Events: []hoso.ProvenEvent{}}
	for _, e := range entries {
		if e.Seq > cp.Size {
			p.PendingSeqs = append(p.PendingSeqs, e.Seq)
			continue
		}
		rp, err := tlog.ProveRecord(int64(cp.Size), int64(e.Seq-1), l.tree)
		if err != nil {
			return nil, fmt.Errorf("prove seq %d: %w", e.Seq, err)
		}
		p.Events = append(p.Events, hoso.ProvenEvent{Seq: e.Seq, LeafIndex: e.Seq - 1, Data: e.Data, Inclusion: hashBytes(rp)})
	}
	return p, nil
}

// ConsistencyProof proves that the tree of size to extends that of size from.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) (*hoso.ConsistencyProof, error) {
	cp, err := l.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case from < 1:
		return nil, hoso.FieldErrorf("from", "must be at least 1, got %d", from)
	case to < from:
		return nil, hoso.FieldErrorf("to", "must be at least from (%d), got %d", from, to)
	case to > cp.Size:
		return nil, hoso.FieldErrorf("to", "must be at most the latest checkpoint's size %d, got %d", cp.Size, to)
	}
	proof, err := tlog.ProveTree(int64(to), int64(from), l.tree)
	if err != nil {
		return nil, fmt.Errorf("prove %d..%d: %w", from, to, err)
	}
	fromRoot, err := tlog.TreeHash(int64(from), l.tree)
	if err != nil {
		return nil, err
	}
	toRoot, err := tlog.TreeHash(int64(to), l.tree)
	if err != nil {
		return nil, err
	}
	return &hoso.ConsistencyProof{From: from, To: to, FromRoot: fromRoot[:], ToRoot: toRoot[:], Proof: hashBytes(proof)}, nil
}

func hashBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}
