package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/dustin/go-humanize"
	"github.com/hoso-ledger/hoso/projections"
)

// memoryLimit is --memory-limit: the memory of the whole process, as a
// container's limit counts it. The Go runtime's soft limit
// (debug.SetMemoryLimit) is what is left of it once the read model's SQLite
// page caches, which live outside the Go heap, and a margin are set aside
// (goMemoryLimit). Without a limit the collector lets the heap grow to about
// twice what is live, and further during a rebuild.
type memoryLimit int64

const (
	// memoryLimitAuto takes 90 % of the container's memory limit (cgroup),
	// or of the machine's memory without one; GOMEMLIMIT, when set, wins.
	memoryLimitAuto memoryLimit = -1
	// memoryLimitOff leaves the heap unbounded (Go's default).
	memoryLimitOff memoryLimit = 0
)

// autoMemoryRatio is the share of the container's (or machine's) memory the
// process takes by default.
const autoMemoryRatio = 0.9

// sqliteCacheReserve is the most the read model's SQLite connections keep in
// page caches, outside the Go heap: the writer's 64 MiB, eight readers' 16
// MiB each and a rebuild's 64 MiB (projections.DB).
const sqliteCacheReserve = 256 << 20

// goMemoryLimit is the Go runtime's soft limit within a process budget:
// the budget less SQLite's caches (when the process keeps the read model)
// and a twentieth for the rest (C allocations, stacks, fragmentation), but
// never under half the budget.
func goMemoryLimit(budget int64, readModel bool) int64 {
	rest := budget / 20
	if readModel {
		rest += sqliteCacheReserve
	}
	return max(budget-rest, budget/2)
}

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

// resolve is the process's budget in bytes; 0 means leave the runtime as
// it is (off, or auto with GOMEMLIMIT set, which the runtime already
// applied: GOMEMLIMIT is the Go runtime's own limit, not a budget).
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
	prev, err := m.Config.MemoryLimit.apply(m.Config.ReadModel, m.Logger)
	m.prevMemoryLimit = prev
	return err
}

// apply sets the Go runtime's limit for a process of budget l, and returns
// the limit it replaced (0 when it left the runtime alone).
func (l memoryLimit) apply(readModel bool, log *slog.Logger) (prev int64, err error) {
	budget, err := l.resolve()
	if err != nil || budget == 0 {
		return 0, err
	}
	n := goMemoryLimit(budget, readModel)
	log.Info("memory limit", "process", humanize.IBytes(uint64(budget)), "go", humanize.IBytes(uint64(n)))
	if readModel {
		// SQLite's share is its reserve: held to it, SQLite shrinks its
		// caches and sorts through temporary files sooner.
		projections.LimitSQLiteMemory(min(sqliteCacheReserve, budget-n))
	}
	return debug.SetMemoryLimit(n), nil
}

// restoreMemoryLimit puts back the limit from before Open (tests run many
// Mains in one process).
func (m *Main) restoreMemoryLimit() {
	if m.prevMemoryLimit != 0 {
		debug.SetMemoryLimit(m.prevMemoryLimit)
		projections.LimitSQLiteMemory(0)
		m.prevMemoryLimit = 0
	}
}
