package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/hoso-ledger/hoso/transparency"
	"github.com/minio/highwayhash"
)

// editBlockFiles changes old into new (the same length) in the one stream
// record holding old, in the stream's block files at rest. With fixChecksum
// it also recomputes the record's checksum as the server computes it (a
// careful tamperer's edit: the server reads the message back without
// complaint); without, the server finds the record corrupt.
func editBlockFiles(t *testing.T, dir, old, new string, fixChecksum bool) {
	t.Helper()
	if len(old) != len(new) {
		t.Fatal("old and new must have the same length")
	}
	blocks, err := filepath.Glob(filepath.Join(dir, "nats", "jetstream", "*", "streams", eventstore.StreamName, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no block files of %s under %s (%v)", eventstore.StreamName, dir, err)
	}
	const (
		hdrSize  = 22 // record length, seq, timestamp, subject length
		hashSize = 8
		hbit     = 1 << 31
	)
	edited := 0
	for _, name := range blocks {
		buf, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var index uint32
		if _, err := fmt.Sscanf(filepath.Base(name), "%d.blk", &index); err != nil {
			t.Fatal(err)
		}
		key := sha256.Sum256(fmt.Appendf(nil, "%s-%d", eventstore.StreamName, index))
		hh, err := highwayhash.NewDigest64(key[:])
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+hdrSize <= len(buf); {
			rl := binary.LittleEndian.Uint32(buf[off:])
			headers := rl&hbit != 0
			rl &^= hbit
			if rl < hdrSize+hashSize || off+int(rl) > len(buf) {
				t.Fatalf("%s: record at %d: length %d", name, off, rl)
			}
			rec := buf[off : off+int(rl)]
			if i := bytes.Index(rec, []byte(old)); i >= 0 {
				copy(rec[i:], new)
				if fixChecksum {
					data := rec[hdrSize:]
					slen := int(binary.LittleEndian.Uint16(rec[20:]))
					hh.Reset()
					hh.Write(rec[4:20])
					hh.Write(data[:slen])
					if headers {
						hh.Write(data[slen+4 : len(data)-hashSize])
					} else {
						hh.Write(data[slen : len(data)-hashSize])
					}
					copy(data[len(data)-hashSize:], hh.Sum(nil))
				}
				edited++
			}
			off += int(rl)
		}
		if err := os.WriteFile(name, buf, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if edited != 1 {
		t.Fatalf("%q found in %d records, want 1", old, edited)
	}
}

// waitTampered polls, within a bound, until continuous verification
// reports a fault.
func waitTampered(t *testing.T, m *Main) *transparency.Fault {
	t.Helper()
	for i := 0; i < 1500; i++ {
		if f := m.Transparency.Tampered(); f != nil {
			return f
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("continuous verification did not notice the changed message within 30 s")
	return nil
}

func metricLine(t *testing.T, m *Main, name string) string {
	t.Helper()
	code, body := get(t, m, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// A message changed at rest in a block file while the ledger was stopped
// is noticed by the running ledger: the gauge goes to 1 naming the event,
// checkpoints stop, and a restart does not forget it.
func TestServeNoticesMessageChangedAtRest(t *testing.T) {
	for _, tt := range []struct {
		name        string
		fixChecksum bool
		want        string
	}{
		{"checksum recomputed", true, "HOSO_EVENTS seq 4: changed"},
		{"checksum left wrong", false, "HOSO_EVENTS seq 4: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := buildLedger(t)
			editBlockFiles(t, dir, `"postal"`, `"online"`, tt.fixChecksum)
			m := reopen(t, dir)
			f := waitTampered(t, m)
			if !strings.HasPrefix(f.Error(), tt.want) {
				t.Errorf("fault %q, want %q", f, tt.want)
			}
			if got := metricLine(t, m, "hoso_ledger_tampered"); got != "hoso_ledger_tampered 1" {
				t.Errorf("metric: %q", got)
			}
			if m.Transparency.Halted() == nil {
				t.Error("the tree goes on signing checkpoints over a ledger known to be altered")
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			// A restart checks the recorded fault again before anything
			// is signed: it stands at once.
			m = reopen(t, dir)
			if f := m.Transparency.Tampered(); f == nil || !strings.HasPrefix(f.Error(), tt.want) {
				t.Errorf("after a restart: fault %v, want %q", f, tt.want)
			}
			if m.Transparency.Halted() == nil {
				t.Error("after a restart: checkpoints signed again")
			}
		})
	}
}

// On a clean ledger the verified position reaches the stream's end, the
// gauge stays 0, and the position outlives a restart.
func TestServeVerifiesCleanLedger(t *testing.T) {
	dir := buildLedger(t)
	m := reopen(t, dir)
	for i := 0; m.Transparency.VerifiedSeq() < 6; i++ {
		if i == 1500 {
			t.Fatalf("verified seq %d after 30 s, want 6", m.Transparency.VerifiedSeq())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := metricLine(t, m, "hoso_ledger_verified_seq"); got != "hoso_ledger_verified_seq 6" {
		t.Errorf("metric: %q", got)
	}
	if got := metricLine(t, m, "hoso_ledger_tampered"); got != "hoso_ledger_tampered 0" {
		t.Errorf("metric: %q", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The position was saved on Close: the next start begins there.
	m = reopen(t, dir)
	if got := m.Transparency.VerifiedSeq(); got != 6 {
		t.Errorf("verified seq at start %d, want the saved 6", got)
	}
	if m.Transparency.Tampered() != nil {
		t.Errorf("clean ledger reported tampered: %v", m.Transparency.Tampered())
	}
}
