package transparency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hoso-ledger/hoso"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/time/rate"
)

// Continuous verification: while the ledger serves, a goroutine of the Log
// re-reads the stream at a bounded rate and checks each event against the
// leaf hash the tree recorded when it was appended, so that a message
// changed or removed at rest under a running ledger is noticed without
// waiting for an operator to run hoso verify (docs/operations.md,
// "HosoLedgerTampered").
//
// It first checks the events past its last verified position (the tail,
// new since the last start), then passes over the older ones again, a
// chunk at a time, the tail always first. Its position and any fault it
// found are kept in a small file, so a restart neither re-checks from the
// start nor forgets a fault.

// DefaultVerifyRate is the events a second the verification reads by
// default: its cost to ingest is measured in docs/benchmarks.md.
const DefaultVerifyRate = 2000

// verifyPause is how long verification waits at the head before it looks
// for new events again, and between two passes over the whole tree (so a
// small ledger is not re-read in a tight loop).
const verifyPause = time.Second

// verifySaveEvery bounds how often the position is written to its file.
const verifySaveEvery = 10 * time.Second

// maxLoggedFaults bounds the bad events remembered as already logged.
const maxLoggedFaults = 1 << 12

// errVerifiedRange stops a read at the end of the range being checked.
var errVerifiedRange = errors.New("end of the range")

// verifyState is what the state file keeps.
type verifyState struct {
	// VerifiedSeq: every event up to it was checked at least once.
	VerifiedSeq uint64 `json:"verified_seq"`
	// PassSeq is the next event of the current pass over the verified
	// events (0: a pass starts at 1).
	PassSeq uint64 `json:"pass_seq"`
	// Fault is the first bad event found, kept until a start finds the
	// event good again.
	Fault *Fault `json:"fault,omitempty"`
}

// reverifier is the Log's continuous verification.
type reverifier struct {
	log     *Log
	file    string
	limiter *rate.Limiter
	chunk   uint64 // events of a pass read at once, between two looks at the tail

	mu      sync.Mutex
	state   verifyState
	checked uint64 // events checked since the process started
	logged  map[uint64]struct{}
	saved   time.Time
}

// VerifiedSeq is the sequence up to which every event was checked against
// its recorded leaf hash; 0 without continuous verification.
func (l *Log) VerifiedSeq() uint64 {
	if l.reverify == nil {
		return 0
	}
	l.reverify.mu.Lock()
	defer l.reverify.mu.Unlock()
	return l.reverify.state.VerifiedSeq
}

// VerifiedEvents is how many events continuous verification checked since
// the process started.
func (l *Log) VerifiedEvents() uint64 {
	if l.reverify == nil {
		return 0
	}
	l.reverify.mu.Lock()
	defer l.reverify.mu.Unlock()
	return l.reverify.checked
}

// Tampered is the first bad event continuous verification found, nil when
// it found none.
func (l *Log) Tampered() *Fault {
	if l.reverify == nil {
		return nil
	}
	l.reverify.mu.Lock()
	defer l.reverify.mu.Unlock()
	if l.reverify.state.Fault == nil {
		return nil
	}
	f := *l.reverify.state.Fault
	return &f
}

// openReverifier loads the state file and checks a recorded fault again
// before anything is signed: a fault is forgotten only when its event
// verifies again (an operator restored the stream), never by a restart.
func (l *Log) openReverifier(ctx context.Context) error {
	v := &reverifier{
		log:     l,
		file:    l.VerifyStateFile,
		limiter: rate.NewLimiter(rate.Limit(l.VerifyRate), max(1, int(l.VerifyRate/10))),
		chunk:   min(max(uint64(l.VerifyRate*10), 1024), 1<<16),
		logged:  map[uint64]struct{}{},
	}
	if v.file != "" {
		b, err := os.ReadFile(v.file)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("verification state: %w", err)
		default:
			if err := json.Unmarshal(b, &v.state); err != nil {
				// Only a position: losing it costs one more check of
				// everything, never a missed fault.
				l.Logger.Warn("verification state unreadable; verifying the whole stream again", "file", v.file, "err", err)
				v.state = verifyState{}
			}
		}
	}
	l.reverify = v
	if f := v.state.Fault; f != nil {
		if f.Seq <= uint64(l.tree.Size()) {
			pass := v.state.PassSeq
			v.state.Fault = nil
			err := v.check(ctx, f.Seq, f.Seq, false, nil)
			v.state.PassSeq = pass
			if err != nil {
				v.state.Fault = f
				l.Logger.Warn("verification: could not check the recorded fault again; it stands", "seq", f.Seq, "err", err)
			}
		}
		if g := v.state.Fault; g == f {
			l.Logger.Error("ledger tampered: an event no longer matches the hash recorded when it was appended; no more checkpoints; run hoso verify",
				"seq", g.Seq, "problem", g.Problem)
			l.halt(g)
		} else if g == nil {
			l.Logger.Warn("ledger: the event found tampered at an earlier start verifies again", "seq", f.Seq)
		}
		return v.save()
	}
	return nil
}

// run checks the tail, then a chunk of the current pass, until ctx ends.
func (v *reverifier) run(ctx context.Context) {
	pause := v.log.RetryInterval
	for ctx.Err() == nil {
		from, to, tail, ok := v.next()
		var err error
		if ok {
			err = v.check(ctx, from, to, tail, v.limiter)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			v.log.Logger.Warn("verification: read the stream", "err", err, "retry_in", pause)
			pause = min(2*pause, maxRetryInterval)
		} else {
			pause = v.log.RetryInterval
		}
		if serr := v.saveIfDue(); serr != nil {
			v.log.Logger.Warn("verification: save position", "err", serr)
		}
		if ok && err == nil {
			continue
		}
		wait := verifyPause
		if err != nil {
			wait = pause
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// next is the range to check now: the tail past the verified position if
// the tree has one, else the next chunk of the current pass; ok is false
// when a pass just ended (the next starts after a pause) or there is
// nothing yet.
func (v *reverifier) next() (from, to uint64, tail, ok bool) {
	size := uint64(v.log.tree.Size())
	v.mu.Lock()
	defer v.mu.Unlock()
	// A tree rebuilt from the stream has fewer leaves than were verified:
	// verification follows it up again.
	v.state.VerifiedSeq = min(v.state.VerifiedSeq, size)
	if v.state.VerifiedSeq < size {
		return v.state.VerifiedSeq + 1, size, true, true
	}
	if v.state.PassSeq == 0 {
		v.state.PassSeq = 1
	}
	if v.state.PassSeq > v.state.VerifiedSeq {
		v.state.PassSeq = 0 // pass over: the next one starts after a pause
		return 0, 0, false, false
	}
	return v.state.PassSeq, min(v.state.VerifiedSeq, v.state.PassSeq+v.chunk-1), false, true
}

// check reads events from..to and compares each with its recorded leaf
// hash, waiting on limiter (if any) before each; a difference or a gap is
// recorded as a fault and the check goes on past it. It returns an error
// only when the stream could not be read.
func (v *reverifier) check(ctx context.Context, from, to uint64, tail bool, limiter *rate.Limiter) error {
	next := from
	err := v.log.Ledger.Read(ctx, from, false, func(e hoso.LedgerEntry) error {
		if e.Seq > to {
			return errVerifiedRange
		}
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		if e.Seq != next {
			v.fault(&Fault{Stream: "HOSO_EVENTS", Seq: next, Problem: fmt.Sprintf("missing (deleted or purged): the stream goes from seq %d to %d", next-1, e.Seq)})
		}
		recorded, err := v.log.tree.leafHash(int64(e.Seq - 1))
		if err != nil {
			return err
		}
		if tlog.RecordHash(e.Data) != recorded {
			v.fault(&Fault{Stream: "HOSO_EVENTS", Seq: e.Seq, Problem: "changed: its bytes differ from those hashed when it was appended"})
		}
		next = e.Seq + 1
		v.advance(e.Seq, tail)
		return nil
	})
	if errors.Is(err, errVerifiedRange) {
		err = nil
	}
	if err != nil {
		return err
	}
	if next <= to {
		v.fault(&Fault{Stream: "HOSO_EVENTS", Seq: next, Problem: fmt.Sprintf("missing (deleted or purged): the stream has no seq %d, which the tree holds", next)})
		v.advance(to, tail)
	}
	return nil
}

func (v *reverifier) advance(seq uint64, tail bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.checked++
	if tail {
		v.state.VerifiedSeq = max(v.state.VerifiedSeq, seq)
	} else {
		v.state.PassSeq = seq + 1
	}
}

// fault records f if it is the first bad event, says so at error level,
// saves it at once and stops the Log signing checkpoints: a ledger known to
// be altered vouches for nothing more until an operator has looked.
func (v *reverifier) fault(f *Fault) {
	// Halt before the fault is visible through Tampered: whoever sees the
	// fault must also see that no more checkpoints are signed.
	if v.log.Halted() == nil {
		v.log.halt(f)
	}
	v.mu.Lock()
	first := v.state.Fault == nil || f.Seq < v.state.Fault.Seq
	if first {
		v.state.Fault = f
	}
	// Each bad event is logged once a process, not at every pass.
	_, logged := v.logged[f.Seq]
	if !logged && len(v.logged) < maxLoggedFaults {
		v.logged[f.Seq] = struct{}{}
	}
	v.mu.Unlock()
	if logged {
		return
	}
	v.log.Logger.Error("ledger tampered: an event no longer matches the hash recorded when it was appended; no more checkpoints; run hoso verify",
		"seq", f.Seq, "problem", f.Problem)
	if first {
		if err := v.save(); err != nil {
			v.log.Logger.Warn("verification: save the fault", "err", err)
		}
	}
}

func (v *reverifier) saveIfDue() error {
	v.mu.Lock()
	due := time.Since(v.saved) >= verifySaveEvery
	v.mu.Unlock()
	if !due {
		return nil
	}
	return v.save()
}

// save writes the state file atomically: a temporary file, synced, renamed.
func (v *reverifier) save() error {
	if v.file == "" {
		return nil
	}
	v.mu.Lock()
	b, err := json.Marshal(v.state)
	v.saved = time.Now()
	v.mu.Unlock()
	if err != nil {
		return err
	}
	return writeFileAtomic(v.file, append(b, '\n'))
}

// writeFileAtomic replaces name with data so that a crash leaves either the
// old file or the new one.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
