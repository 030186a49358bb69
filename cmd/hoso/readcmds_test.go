package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// hoso report prints the same table from a running server (--url) and from
// the data directory; hoso rebuild builds a read model that prints it
// byte for byte again.
func TestReportAndRebuildCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m := openMain(t, dir)
	for i, ev := range []string{
		`{"type":"received","dossier":"C1","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`,
		`{"type":"received","dossier":"C2","unit":"00130","at":"2024-03-04T08:10:00+07:00","procedure":"1.001776","channel":"online","days":3}`,
		`{"type":"resolved","dossier":"C1","unit":"00127","at":"2024-03-04T09:20:00+07:00"}`,
		`{"type":"transferred","dossier":"C2","unit":"00130","to_unit":"00127","at":"2024-03-04T09:30:00+07:00"}`,
	} {
		if code, body := post(t, m, "application/json", ev); code != http.StatusCreated {
			t.Fatalf("event %d: %d %s", i, code, body)
		}
	}
	waitReady(t, m)
	ctx := context.Background()
	report := func(extra ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args := append([]string{"report", "--unit", "004", "--level", "ward", "--from", "2024-03-01", "--to", "2024-03-31"}, extra...)
		if err := run(ctx, args, nil, &out, &errOut); err != nil {
			t.Fatalf("%v: %v %s", args, err, errOut.String())
		}
		return out.String()
	}
	remote := report("--url", m.HTTP.URL(), "--token-file", tokenFileOf(t, m, testAuditor))
	for _, want := range []string{"Quận Long Biên (004), ward by unit, 2024-03-01 to 2024-03-31, as of seq 4", "00127", "Tổng cộng"} {
		if !strings.Contains(remote, want) {
			t.Fatalf("report --url lacks %q:\n%s", want, remote)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	local := report("--data", dir)
	if local != remote {
		t.Fatalf("--data and --url differ:\n%s\n%s", local, remote)
	}
	t.Setenv("HOSO_FORMAT", "csv")
	if csv := report("--data", dir); !strings.Contains(csv, "00127") || csv == local {
		t.Errorf("HOSO_FORMAT=csv:\n%s", csv)
	}
	t.Setenv("HOSO_FORMAT", "")

	var errOut bytes.Buffer
	if err := run(ctx, []string{"rebuild", "--data", dir, "--nats-listen", "127.0.0.1:0"}, nil, &bytes.Buffer{}, &errOut); err != nil {
		t.Fatalf("rebuild: %v %s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "rebuild: 4/4 events (100%)") {
		t.Errorf("rebuild progress:\n%s", errOut.String())
	}
	if again := report("--data", dir, "--format", "text"); again != local {
		t.Errorf("after rebuild:\n%s\nbefore:\n%s", again, local)
	}

	// Bad input names what is wrong.
	for args, want := range map[string]string{
		"report --data " + dir + " --from 2024-03-01":                                        "to",
		"report --data " + dir + " --from 2024-03-01 --to 2024-03-31 --level city":           "level",
		"report --data " + dir + " --from 2024-03-01 --to 2024-03-31 --format pdf":           "format",
		"report --data " + filepath.Join(dir, "none") + " --from 2024-03-01 --to 2024-03-31": "no read model",
	} {
		err := run(ctx, strings.Fields(args), nil, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %q", args, err, want)
		}
	}
}
