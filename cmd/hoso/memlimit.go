package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/dustin/go-humanize"
)

// memoryLimit is --memory-limit: the soft limit of the Go heap, applied with
// debug.SetMemoryLimit. Without one the collector lets the heap grow to about
// twice what is live, and the embedded NATS server's subject index is live.
type memoryLimit int64

const (
	// memoryLimitAuto takes 90 % of the container's memory limit (cgroup),
	// or of the machine's memory without one; GOMEMLIMIT, when set, wins.
	memoryLimitAuto memoryLimit = -1
	// memoryLimitOff leaves the heap unbounded (Go's default).
	memoryLimitOff memoryLimit = 0
)

// autoMemoryRatio is the share of the available memory the Go heap may use:
// the rest is SQLite's page caches, stacks and what the runtime keeps back.
const autoMemoryRatio = 0.9

func (l *memoryLimit) String() string {
	switch *l {
	case memoryLimitAuto:
		return "auto"
	case memoryLimitOff:
		return "off"
	}
	if *l%(1<<20) == 0 {
		return strconv.FormatInt(int64(*l>>20), 10) + "MiB"
	}
	return strconv.FormatInt(int64(*l), 10)
}

// Set reads "auto", "off" (or 0), or a size such as 1800MiB, 1.5GiB or 2GB.
func (l *memoryLimit) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "auto":
		*l = memoryLimitAuto
		return nil
	case "off", "0":
		*l = memoryLimitOff
		return nil
	}
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return fmt.Errorf("want auto, off or a size such as 1800MiB: %w", err)
	}
	if n < 64<<20 || n > math.MaxInt64 {
		return fmt.Errorf("%s: want at least 64MiB", v)
	}
	*l = memoryLimit(n)
	return nil
}

// resolve is the limit in bytes to apply; 0 means leave the runtime as it
// is (off, or auto with GOMEMLIMIT set, which the runtime already applied).
func (l memoryLimit) resolve() (int64, error) {
	switch l {
	case memoryLimitOff:
		return 0, nil
	case memoryLimitAuto:
		if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
			return 0, nil
		}
		n, err := memlimit.ApplyRatio(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem), autoMemoryRatio)()
		if err != nil {
			return 0, fmt.Errorf("memory-limit auto: %w", err)
		}
		return int64(min(n, math.MaxInt64)), nil
	}
	return int64(l), nil
}

// applyMemoryLimit sets the process's Go memory limit from the
// configuration and remembers the previous one for Close.
func (m *Main) applyMemoryLimit() error {
	n, err := m.Config.MemoryLimit.resolve()
	if err != nil || n == 0 {
		return err
	}
	m.prevMemoryLimit = debug.SetMemoryLimit(n)
	m.Logger.Info("go memory limit", "bytes", n, "limit", humanize.IBytes(uint64(n)))
	return nil
}

// restoreMemoryLimit puts back the limit from before Open (tests run many
// Mains in one process).
func (m *Main) restoreMemoryLimit() {
	if m.prevMemoryLimit != 0 {
		debug.SetMemoryLimit(m.prevMemoryLimit)
		m.prevMemoryLimit = 0
	}
}
