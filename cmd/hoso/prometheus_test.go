package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lookTool finds an installed tool. Without it the test is skipped, unless
// CI=true: there a missing tool fails.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found with CI=true: install Debian's prometheus package", name)
		}
		t.Skipf("%s not installed (Debian package prometheus); CI=true makes this a failure", name)
	}
	return path
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a child's output for the failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var forRE = regexp.MustCompile(`(?m)^(\s+for:) \S+$`)

// TestPrometheusDueSoonAlert runs hoso's Main and a real Prometheus that
// scrapes it with the project's alert rules (their for: shortened), posts a
// dossier due within the horizon and waits for the due-soon alert to fire
// through Prometheus' HTTP API.
func TestPrometheusDueSoonAlert(t *testing.T) {
	bin := lookTool(t, "prometheus")
	m := openMain(t, filepath.Join(t.TempDir(), "data"))

	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "hoso-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	short := forRE.ReplaceAll(rules, []byte("$1 1s"))
	if bytes.Equal(short, rules) {
		t.Fatal("no for: found to shorten in the rules")
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), short, 0o600); err != nil {
		t.Fatal(err)
	}
	target := strings.TrimPrefix(m.HTTP.URL(), "http://")
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: hoso
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	// Monday 2024-03-04 10:00 in Vietnam (testNow): due at 16:00 the same
	// day is within one working day.
	code, body := post(t, m, "application/json", `{"type":"received","dossier":"soon-1","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"online","due":"2024-03-04T16:00:00+07:00"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}

	api := "http://" + addr + "/api/v1/alerts"
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		if alert, ok := firing(api, "HosoDossiersDueSoon", &last); ok {
			if alert.Labels["unit"] != "00127" || alert.Labels["severity"] != "warning" || alert.Labels["district"] != "004" {
				t.Fatalf("alert labels %v", alert.Labels)
			}
			if !strings.Contains(alert.Annotations["description"], "1 open dossier(s) of unit 00127") {
				t.Fatalf("alert description %q", alert.Annotations["description"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HosoDossiersDueSoon never fired; last answer %s\nprometheus output:\n%s", last, out.String())
		}
		select {
		case err := <-exited:
			exited <- err // for the deferred kill
			t.Fatalf("prometheus exited: %v\n%s", err, out.String())
		case <-time.After(250 * time.Millisecond):
		}
	}
	// The other deadline alert stays quiet: nothing is overdue.
	if _, ok := firing(api, "HosoDossiersOverdue", &last); ok {
		t.Fatalf("HosoDossiersOverdue fired: %s", last)
	}
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// firing asks Prometheus for its alerts and returns the firing one named
// name; last keeps the raw answer for a failure message.
func firing(api, name string, last *string) (promAlert, bool) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(api)
	if err != nil {
		*last = (&url.Error{Op: "GET", URL: api, Err: err}).Error()
		return promAlert{}, false
	}
	defer resp.Body.Close()
	var answer struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	var raw bytes.Buffer
	if err := json.NewDecoder(io.TeeReader(resp.Body, &raw)).Decode(&answer); err != nil {
		*last = raw.String()
		return promAlert{}, false
	}
	*last = raw.String()
	for _, a := range answer.Data.Alerts {
		if a.Labels["alertname"] == name && a.State == "firing" {
			return a, true
		}
	}
	return promAlert{}, false
}
