package transparency

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoso-ledger/hoso"
	"golang.org/x/mod/sumdb/tlog"
)

// storedEvent is a stored event's bytes, enough for the proof's checks.
func storedEvent(dossier string, version int) []byte {
	return fmt.Appendf(nil, `{"id":"%s-%d","type":"received","dossier":%q,"unit":"00127","at":"2024-03-04T01:00:00Z","version":%d,"recorded_at":"2024-03-04T01:00:01Z"}`,
		dossier, version, dossier, version)
}

// testTree is a tree file holding leaves, with A's events at seqs 2, 4, 5.
func testTree(t testing.TB) (*hashFile, [][]byte) {
	t.Helper()
	leaves := [][]byte{storedEvent("B", 1), storedEvent("A", 1), storedEvent("B", 2), storedEvent("A", 2), storedEvent("A", 3), storedEvent("C", 1)}
	h, err := openHashFile(filepath.Join(t.TempDir(), "tree.hashes"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Append(leaves); err != nil {
		t.Fatal(err)
	}
	return h, leaves
}

func proveA(t testing.TB, h *hashFile, leaves [][]byte, k *Key) *hoso.DossierProof {
	t.Helper()
	size := h.Size()
	root, err := tlog.TreeHash(size, h)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := k.Sign(size, root)
	if err != nil {
		t.Fatal(err)
	}
	p := &hoso.DossierProof{Dossier: "A", Checkpoint: cp}
	for _, seq := range []uint64{2, 4, 5} {
		rp, err := tlog.ProveRecord(size, int64(seq-1), h)
		if err != nil {
			t.Fatal(err)
		}
		p.Events = append(p.Events, hoso.ProvenEvent{Seq: seq, LeafIndex: seq - 1, Data: leaves[seq-1], Inclusion: hashBytes(rp)})
	}
	return p
}

func TestVerifyDossierProof(t *testing.T) {
	k := newTestKey(t, "hoso-test")
	h, leaves := testTree(t)
	tests := []struct {
		name   string
		change func(p *hoso.DossierProof)
		says   string
	}{
		{"valid", func(*hoso.DossierProof) {}, ""},
		{"changed bytes", func(p *hoso.DossierProof) {
			p.Events[1].Data = bytes.Replace(p.Events[1].Data, []byte("00127"), []byte("00118"), 1)
		}, "seq 4: not in the signed tree"},
		{"moved to another position", func(p *hoso.DossierProof) { p.Events[1].Seq, p.Events[1].LeafIndex = 3, 2 }, "seq 3: not in the signed tree"},
		{"an event left out", func(p *hoso.DossierProof) { p.Events = append(p.Events[:1], p.Events[2:]...) }, "seq 5: event of dossier \"A\" version 3, want dossier \"A\" version 2"},
		{"events swapped", func(p *hoso.DossierProof) { p.Events[0], p.Events[1] = p.Events[1], p.Events[0] }, `seq 4: event of dossier "A" version 2, want dossier "A" version 1`},
		{"another dossier's proof", func(p *hoso.DossierProof) { p.Dossier = "B" }, "want dossier \"B\""},
		{"leaf index not seq-1", func(p *hoso.DossierProof) { p.Events[0].LeafIndex = 0 }, "leaf index 0 out of place"},
		{"size claimed larger", func(p *hoso.DossierProof) { p.Checkpoint.Size = 9 }, "differ from the signed note"},
		{"no events", func(p *hoso.DossierProof) { p.Events = nil }, "no events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proveA(t, h, leaves, k)
			tt.change(p)
			_, err := VerifyDossierProof(p, k.Verifier)
			if tt.says == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want one saying %q", err, tt.says)
			}
		})
	}
}

func TestDecodeDossierProof(t *testing.T) {
	k := newTestKey(t, "hoso-test")
	h, leaves := testTree(t)
	good, err := json.Marshal(proveA(t, h, leaves, k))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := DecodeDossierProof(bytes.NewReader(good)); err != nil || len(p.Events) != 3 {
		t.Fatalf("decode: %v", err)
	}
	tests := []struct{ name, json, says string }{
		{"unknown field", `{"dossier":"A","extra":1}`, "extra"},
		{"no dossier", `{"checkpoint":{"note":"x"}}`, "dossier"},
		{"no checkpoint", `{"dossier":"A"}`, "checkpoint.note"},
		{"short hash", `{"dossier":"A","checkpoint":{"note":"x"},"events":[{"seq":1,"inclusion":["AAAA"]}]}`, "events[0].inclusion[0]"},
		{"no seq", `{"dossier":"A","checkpoint":{"note":"x"},"events":[{"data":"AAAA"}]}`, "events[0].seq"},
		{"trailing data", `{"dossier":"A","checkpoint":{"note":"x"}} {}`, "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeDossierProof(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want one saying %q", err, tt.says)
			}
		})
	}
}

func FuzzDecodeDossierProof(f *testing.F) {
	k := newTestKey(f, "hoso-fuzz")
	h, leaves := testTree(f)
	good, err := json.Marshal(proveA(f, h, leaves, k))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"dossier":"A","checkpoint":{"note":"x"},"events":[{"seq":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeDossierProof(bytes.NewReader(data))
		if err != nil {
			return
		}
		if p.Dossier == "" || p.Checkpoint.Note == "" {
			t.Fatalf("decoded an incomplete proof: %+v", p)
		}
		// Whatever decodes, checking it never panics; only a proof the key
		// signed with every inclusion valid passes.
		if cp, err := VerifyDossierProof(p, k.Verifier); err == nil && cp.Origin != "hoso-fuzz" {
			t.Fatalf("verified a proof of %q", cp.Origin)
		}
	})
}

func TestTreeFileTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree.hashes")
	h, err := openHashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][]byte
	for i := range 11 {
		leaves = append(leaves, storedEvent("A", i+1))
	}
	// In three batches: the same tree as in one.
	for _, b := range [][][]byte{leaves[:4], leaves[4:5], leaves[5:]} {
		if err := h.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	root, err := tlog.TreeHash(11, h)
	if err != nil {
		t.Fatal(err)
	}
	mem := &memTree{}
	for _, l := range leaves {
		if err := mem.appendLeaf(tlog.RecordHash(l)); err != nil {
			t.Fatal(err)
		}
	}
	if memRoot, _ := tlog.TreeHash(11, mem); memRoot != root {
		t.Fatalf("batched root %v, leaf by leaf %v", root, memRoot)
	}
	h.Close()
	// A crash in the middle of the next batch's write: a partial hash and
	// part of a leaf's hashes.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte{7}, 40)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h, err = openHashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Size() != 11 {
		t.Fatalf("size after torn write %d, want 11", h.Size())
	}
	if again, _ := tlog.TreeHash(11, h); again != root {
		t.Fatalf("root after torn write %v, want %v", again, root)
	}
	if err := h.Append(leaves[:1]); err != nil || h.Size() != 12 {
		t.Fatalf("append after torn write: size %d %v", h.Size(), err)
	}
}
