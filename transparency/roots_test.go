package transparency

import (
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// Roots gives tlog's tree hash at every size.
func TestRootsMatchTreeHash(t *testing.T) {
	tree := &memTree{}
	var r Roots
	for n := 0; n <= 70; n++ {
		want, err := tlog.TreeHash(tree.size, tree)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Root(); got != want || r.Size() != int64(n) {
			t.Fatalf("size %d: root %v, want %v", n, got, want)
		}
		leaf := tlog.RecordHash(fmt.Appendf(nil, "event %d", n))
		r.Append(leaf)
		if err := tree.appendLeaf(leaf); err != nil {
			t.Fatal(err)
		}
	}
}
