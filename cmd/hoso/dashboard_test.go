package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
)

// grafanaPanel is what the test reads of a Grafana panel: its queries and,
// for a row, the panels it holds.
type grafanaPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaIntervals are Grafana's range variables, which PromQL cannot parse;
// label-value variables ($district…) sit inside strings and parse as they are.
var grafanaIntervals = strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m")

// exportedNames are the series names a registry exposes: each family's
// name, and for histograms and summaries the names of their parts.
func exportedNames(mfs []*dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	return names
}

// queryMetricNames parses expr and returns the metric names it selects.
func queryMetricNames(expr string) ([]string, error) {
	ast, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaIntervals.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" {
				name = m.Value
			}
		}
		names = append(names, name)
		return nil
	})
	return names, nil
}

// checkDashboard answers one error per query that does not parse or names
// a metric not in names, and the number of queries it read.
func checkDashboard(data []byte, names map[string]bool) (int, []error) {
	var dash struct {
		Panels []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		return 0, []error{err}
	}
	var errs []error
	queries := 0
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Errorf("panel %q has no query", p.Title))
			}
			for _, t := range p.Targets {
				queries++
				used, err := queryMetricNames(t.Expr)
				if err != nil {
					errs = append(errs, fmt.Errorf("panel %q: %q: %w", p.Title, t.Expr, err))
					continue
				}
				if len(used) == 0 {
					errs = append(errs, fmt.Errorf("panel %q: %q names no metric", p.Title, t.Expr))
				}
				for _, n := range used {
					if !names[n] {
						errs = append(errs, fmt.Errorf("panel %q: %q: hoso exports no metric %q", p.Title, t.Expr, n))
					}
				}
			}
		}
	}
	walk(dash.Panels)
	return queries, errs
}

// TestDashboardQueries parses every panel query of the Grafana dashboards
// with the Prometheus parser and checks that each names only metrics that
// Main's registry exports once it has seen traffic.
func TestDashboardQueries(t *testing.T) {
	m := openMain(t, filepath.Join(t.TempDir(), "data"))
	for _, body := range []string{
		`{"type":"received","dossier":"d-1","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`,
		`{"type":"resolved","dossier":"d-1","unit":"00127","at":"2024-03-04T09:00:00+07:00"}`,
		`{"type":"received","dossier":"d-2","unit":"00127","at":"2024-03-04T08:00:00+07:00","procedure":"1.001776","channel":"online","days":3}`,
	} {
		if code, b := post(t, m, "application/json", body); code != http.StatusCreated {
			t.Fatalf("POST: %d %s", code, b)
		}
	}
	waitReady(t, m)
	mfs, err := m.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := exportedNames(mfs)
	for _, want := range []string{"hoso_open_dossiers", "hoso_dossiers_resolved_total", "hoso_http_request_duration_seconds_bucket", "go_goroutines"} {
		if !names[want] {
			t.Fatalf("the registry does not export %s", want)
		}
	}

	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "grafana", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in docs/grafana: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n, errs := checkDashboard(data, names)
		for _, err := range errs {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		if n == 0 {
			t.Errorf("%s: no queries", filepath.Base(f))
		}
	}

	// The check does catch a wrong name and a query that does not parse.
	_, errs := checkDashboard([]byte(`{"panels":[{"title":"x","type":"timeseries","targets":[{"expr":"rate(hoso_nope_total[$__rate_interval])"},{"expr":"sum(("}]}]}`), names)
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	sort.Strings(msgs)
	if len(msgs) != 2 || !strings.Contains(strings.Join(msgs, "\n"), `no metric "hoso_nope_total"`) {
		t.Fatalf("a bad dashboard gave %q", msgs)
	}
}
