package eventstore

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// The compact index answers as a map from code to the widest span of the
// sequences recorded for it would, for any order of adds and applies and
// any number of buckets: a span may only be wider (hash collisions, a
// width past 32 bits), never narrower, and never start later.
func TestDossierIndexCoversEverySpan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		buckets := rapid.SampledFrom([]uint32{1, 3, 4, 65536}).Draw(t, "buckets")
		x := newDossierIndex(buckets)
		want := map[string]span{}
		codes := rapid.SliceOfNDistinct(rapid.StringMatching(`[A-Z0-9]{1,8}`), 1, 40, rapid.ID).Draw(t, "codes")
		var seq uint64
		for range rapid.IntRange(1, 200).Draw(t, "events") {
			code := rapid.SampledFrom(codes).Draw(t, "code")
			// Mostly consecutive, now and then a jump past 32 bits of width.
			seq += 1 + rapid.SampledFrom([]uint64{0, 0, 0, 7, 1 << 32}).Draw(t, "gap")
			if rapid.Bool().Draw(t, "acknowledged") {
				x.add(code, seq)
			} else {
				x.apply(code, seq)
			}
			sp, ok := want[code]
			if !ok {
				sp = span{seq, seq}
			}
			want[code] = span{min(sp.first, seq), max(sp.last, seq)}
		}
		if x.len() > len(want) {
			t.Fatalf("index holds %d spans for %d dossiers", x.len(), len(want))
		}
		for code, w := range want {
			got, ok, _ := x.lookup(code)
			if !ok || got.first > w.first || got.last < w.last {
				t.Fatalf("dossier %q: span %+v (found %v), want one covering %+v", code, got, ok, w)
			}
			if buckets == 65536 && got.first != w.first {
				t.Fatalf("dossier %q: span starts at %d, want %d", code, got.first, w.first)
			}
		}
		if _, ok, _ := x.lookup("NOT-RECORDED"); ok && x.len() == len(want) && len(want) < 5 {
			// With few codes a collision of 32 high bits within a bucket
			// is all but impossible: a code never recorded is absent.
			t.Fatalf("unrecorded code found in an index of %d", x.len())
		}
	})
}

// Entries are sorted by tag within each bucket and a bucket's slice grows
// by an eighth, so a large index costs about 18 bytes a dossier.
func TestDossierIndexSize(t *testing.T) {
	const dossiers = 200_000
	x := newDossierIndex(1024)
	for i := range dossiers {
		x.apply(fmt.Sprintf("D-%07d", i), uint64(i+1))
	}
	if x.len() != dossiers {
		t.Fatalf("len = %d, want %d", x.len(), dossiers)
	}
	entries, capacity := 0, 0
	for b, s := range x.spans {
		entries += len(s)
		capacity += cap(s)
		for i := 1; i < len(s); i++ {
			if s[i-1].tag >= s[i].tag {
				t.Fatalf("bucket %d not sorted at %d", b, i)
			}
		}
	}
	if entries != dossiers {
		t.Fatalf("%d entries, want %d", entries, dossiers)
	}
	if perDossier := float64(capacity) * 16 / dossiers; perDossier > 19 {
		t.Fatalf("%.1f bytes a dossier in entries' capacity, want at most 19", perDossier)
	}
}
