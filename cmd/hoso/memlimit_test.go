package main

import (
	"context"
	"io"
	"runtime/debug"
	"testing"

	"github.com/hoso-ledger/hoso/projections"
)

func TestMemoryLimitFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want memoryLimit
		err  bool
	}{
		{in: "auto", want: memoryLimitAuto},
		{in: "AUTO", want: memoryLimitAuto},
		{in: "off", want: memoryLimitOff},
		{in: "0", want: memoryLimitOff},
		{in: "1800MiB", want: 1800 << 20},
		{in: "1.5GiB", want: 3 << 29},
		{in: "2GB", want: 2_000_000_000},
		{in: "2 GiB", want: 2 << 30},
		{in: "1073741824", want: 1 << 30},
		{in: "10MiB", err: true},
		{in: "lots", err: true},
		{in: "-1GiB", err: true},
		{in: "", err: true},
	} {
		var l memoryLimit
		err := l.Set(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("Set(%q) = %d, want an error", tc.in, l)
			}
			continue
		}
		if err != nil || l != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tc.in, l, err, tc.want)
		}
		// What String prints reads back as the same limit (bench hands it
		// to its child processes that way).
		var back memoryLimit
		if err := back.Set(l.String()); err != nil || back != l {
			t.Errorf("Set(%q) after String of %q = %d, %v; want %d", l.String(), tc.in, back, err, l)
		}
	}
}

func TestMemoryLimitFromFlagAndEnvironment(t *testing.T) {
	m := NewMain()
	if m.Config.MemoryLimit != memoryLimitAuto {
		t.Errorf("default memory limit %v, want auto", m.Config.MemoryLimit.String())
	}
	if err := m.ParseFlags([]string{"--memory-limit", "1800MiB"}, io.Discard); err != nil || m.Config.MemoryLimit != 1800<<20 {
		t.Errorf("--memory-limit 1800MiB: %d, %v", m.Config.MemoryLimit, err)
	}
	t.Setenv("HOSO_MEMORY_LIMIT", "off")
	m = NewMain()
	if err := m.ParseFlags(nil, io.Discard); err != nil || m.Config.MemoryLimit != memoryLimitOff {
		t.Errorf("HOSO_MEMORY_LIMIT=off: %d, %v", m.Config.MemoryLimit, err)
	}
	t.Setenv("HOSO_MEMORY_LIMIT", "a lot")
	m = NewMain()
	if err := m.ParseFlags(nil, io.Discard); err == nil {
		t.Errorf("HOSO_MEMORY_LIMIT=%q accepted", "a lot")
	}
}

// Open applies the limit to the Go runtime and Close puts back the one
// from before.
func TestMemoryLimitApplied(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	m := NewMain()
	m.Config.DataDir = t.TempDir()
	m.Config.HTTPAddr, m.Config.NATSListen = "127.0.0.1:0", "127.0.0.1:0"
	m.Config.LogLevel = "warn"
	m.Config.DeadlineInterval = 0
	m.Config.MemoryLimit = 3 << 30
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The process's 3 GiB, less SQLite's caches and a twentieth.
	if got, want := debug.SetMemoryLimit(-1), int64(3<<30-256<<20-(3<<30)/20); got != want {
		t.Errorf("Go memory limit while open: %d, want %d", got, want)
	}
	if got := projections.LimitSQLiteMemory(-1); got != 256<<20 {
		t.Errorf("SQLite soft heap limit while open: %d, want %d", got, 256<<20)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit after Close: %d, want %d as before", got, before)
	}
	if got := projections.LimitSQLiteMemory(-1); got != 0 {
		t.Errorf("SQLite soft heap limit after Close: %d, want none", got)
	}
}

// The Go runtime gets the process's budget less what SQLite's caches and
// the rest of the process take outside its heap.
func TestGoMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		budget    int64
		readModel bool
		want      int64
	}{
		{2 << 30, true, 2<<30 - 256<<20 - (2<<30)/20},
		{2 << 30, false, 2<<30 - (2<<30)/20},
		{24 << 30, true, 24<<30 - 256<<20 - (24<<30)/20},
		// A budget too small for the reserve leaves the Go heap half.
		{300 << 20, true, 150 << 20},
		{64 << 20, false, 64<<20 - (64<<20)/20},
	} {
		if got := goMemoryLimit(tc.budget, tc.readModel); got != tc.want {
			t.Errorf("goMemoryLimit(%d MiB, read model %v) = %d, want %d", tc.budget>>20, tc.readModel, got, tc.want)
		}
	}
}

func TestMemoryLimitAuto(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	if n, err := memoryLimitAuto.resolve(); err != nil || n != 0 {
		t.Errorf("auto with GOMEMLIMIT set: %d, %v; want 0 (leave the runtime's)", n, err)
	}
}
