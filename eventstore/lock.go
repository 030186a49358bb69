package eventstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrDataDirInUse is returned by Open when another process runs an embedded
// server on the same data directory. Two servers writing one JetStream store
// would corrupt it, and nats-server does not guard against that itself.
var ErrDataDirInUse = errors.New("data directory in use")

// dirLock is an exclusive advisory lock on a data directory, held for as
// long as the embedded server runs and dropped by the kernel if the process
// dies, so a crash never leaves a stale lock behind.
type dirLock struct{ f *os.File }

// lockDataDir takes dir's lock, or answers ErrDataDirInUse naming the
// process that holds it.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "hoso.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flockExclusive(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if pid := strings.TrimSpace(string(holder)); pid != "" {
			return nil, fmt.Errorf("%w: %s is held by process %s; stop it, or reach its server with --nats-url", ErrDataDirInUse, dir, pid)
		}
		return nil, fmt.Errorf("%w: %s is held by another process; stop it, or reach its server with --nats-url", ErrDataDirInUse, dir)
	}
	// The pid is only a hint for the message above; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() error {
	if l == nil {
		return nil
	}
	// Empty the pid first: the file stays, and a stale pid in it would
	// only mislead whoever reads it.
	_ = l.f.Truncate(0)
	return l.f.Close() // closing the descriptor drops the flock
}
