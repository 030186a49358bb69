package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A group hoso bench does not know is refused before anything is measured,
// with the flag named.
func TestBenchOnlyRefusesUnknownGroup(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"bench", "--only", "reports", "--data", t.TempDir()}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--only") || !strings.Contains(err.Error(), `"reports"`) {
		t.Fatalf("err = %v, want one naming --only and the value", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed a table: %q", out.String())
	}
}
