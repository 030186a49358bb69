package eventstore_test

import (
	"context"
	"testing"
)

// A process whose cached state of a dossier is stale (another process
// appended since) does not refuse an event on that state: it reads the
// dossier again before it says no.
func TestStaleCacheRefusesNothing(t *testing.T) {
	ctx := context.Background()
	a, b := twoProcesses(t)
	if _, err := a.Append(ctx, decode(t, received("ST-1"))); err != nil {
		t.Fatal(err)
	}
	resolved := `{"id":"st-1-resolved","type":"resolved","dossier":"ST-1","unit":"00127","at":"2024-03-01T10:00:00+07:00"}`
	if _, err := b.Append(ctx, decode(t, resolved)); err != nil {
		t.Fatal(err)
	}
	// a still holds ST-1 as processing: returned is valid on the stream's
	// state, and the resolution re-sent to a is a duplicate.
	res, err := a.Append(ctx, decode(t, resolved))
	if err != nil || !res.Duplicate || res.Version != 2 {
		t.Fatalf("resolution re-sent to the stale process: %+v %v", res, err)
	}
	if _, err := b.Append(ctx, decode(t, `{"type":"returned","dossier":"ST-1","unit":"00127","at":"2024-03-01T11:00:00+07:00"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, decode(t, received("ST-2"))); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, decode(t, `{"type":"resolved","dossier":"ST-2","unit":"00127","at":"2024-03-01T10:00:00+07:00"}`)); err != nil {
		t.Fatal(err)
	}
	res, err = a.Append(ctx, decode(t, `{"type":"returned","dossier":"ST-2","unit":"00127","at":"2024-03-01T11:00:00+07:00"}`))
	if err != nil || res.Version != 3 {
		t.Fatalf("returned through the process that had not seen the resolution: %+v %v", res, err)
	}
}
