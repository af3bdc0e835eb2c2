package promcache_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cachekit/cache"
)

// pendingMetrics are names that the dashboard and the alerts use and that the
// collector does not export yet. The test fails once one is exported, so that the
// entry goes.
var pendingMetrics = map[string]bool{}

// metricName matches a metric of the cache in an expression, whatever its namespace.
var metricName = regexp.MustCompile(`[A-Za-z0-9_:]*cache_[a-z_]+`)

// dashboardVars are the variables the dashboard's expressions may use, and what the test
// puts in their place.
var dashboardVars = strings.NewReplacer("${prefix}", "myapp_", "$driver", ".*", "$op", ".*",
	"$__rate_interval", "5m", "${datasource}", "")

// TestDashboardAndAlertsUseExportedMetrics parses the Grafana dashboard and the
// Prometheus alert rules shipped with the package, and checks that every metric they
// name is in the collector's output (namespace myapp), so that renaming a metric
// fails here.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	exported := exportedNames(t)
	used := map[string][]string{} // name -> where
	for where, expr := range dashboardExprs(t, "dashboards/cachekit.json") {
		for _, n := range metricNames(t, where, expr) {
			used[n] = append(used[n], where)
		}
	}
	for where, expr := range alertExprs(t, "alerts/cachekit-alerts.yaml") {
		for _, n := range metricNames(t, where, expr) {
			used[n] = append(used[n], where)
		}
	}
	for _, n := range []string{"hits_total", "misses_total", "near_hits_total", "latency_seconds",
		"locks_contended_total", "locks_lost_total", "breaker_open", "failed_open_total", "errors_total"} {
		if len(used["myapp_cache_"+n]) == 0 {
			t.Errorf("neither the dashboard nor the alerts use myapp_cache_%s", n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(used)) {
		switch {
		case exported[n] && pendingMetrics[n]:
			t.Errorf("%s is exported now: remove it from pendingMetrics", n)
		case pendingMetrics[n]:
			t.Logf("%s (used by %v) is not exported yet", n, used[n])
		case !exported[n]:
			t.Errorf("%s, used by %v, is not in the collector's output", n, used[n])
		}
	}
}

// exportedNames returns the names of the metrics a collector of namespace myapp
// exports after operations that move every counter the dashboard reads.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	c := newCache(t, true)
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector(t, c, "myapp"))
	if err := c.Set(ctx, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	for range 2000 { // latency is sampled on about one call in 64
		if _, err := c.Get(ctx, "k", &s); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.Get(ctx, "k", new(int)) // an error, for errors_total{op="Get"}
	h, err := cache.Acquire(ctx, c, "lock", cache.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Acquire(ctx, c, "lock", cache.LockOptions{TTL: time.Minute}); !errors.Is(err, cache.ErrNotAcquired) {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	_, body := scrape(t, reg)
	out := map[string]bool{}
	for line := range strings.Lines(body) {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("no metrics in the output:\n%s", body)
	}
	return out
}

// metricNames returns the cache metrics that expr names; each must carry the namespace
// myapp, and expr must use no variable the test does not know.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	if strings.TrimSpace(expr) == "" {
		t.Errorf("%s: empty expression", where)
	}
	if strings.Contains(expr, "$") {
		t.Errorf("%s: unknown variable in %q", where, expr)
	}
	names := metricName.FindAllString(expr, -1)
	for _, n := range names {
		if !strings.HasPrefix(n, "myapp_cache_") {
			t.Errorf("%s: %s does not start with the namespace myapp_", where, n)
		}
	}
	return names
}

// dashboardExprs returns the PromQL of the dashboard's panels and of its variables'
// queries, by where they are, with the variables replaced.
func dashboardExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: want a uid, a title and panels", path)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for i, tg := range p.Targets {
			out[path+": panel "+p.Title+" #"+string(rune('A'+i))] = dashboardVars.Replace(tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out[path+": variable "+v.Name] = dashboardVars.Replace(v.Definition)
		}
	}
	return out
}

// alertExprs returns the expressions of the rule file's alerts, by alert name: a
// line scan of "- alert:" and "expr:" lines, with an "expr: |" block's lines joined.
// Every alert needs an expression, a severity and a summary.
func alertExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	has := map[string]map[string]bool{} // alert -> "severity", "summary"
	var alert string
	blockIndent := -1 // the indent of an "expr: |" line while its block is read
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if blockIndent >= 0 {
			if trimmed == "" || indent > blockIndent {
				out[alert] += " " + trimmed
				continue
			}
			blockIndent = -1
		}
		switch key, val, _ := strings.Cut(trimmed, ":"); key {
		case "- alert":
			alert = strings.TrimSpace(val)
			has[alert] = map[string]bool{}
		case "expr":
			if alert == "" {
				t.Fatalf("%s: expr outside an alert: %q", path, line)
			}
			if v := strings.TrimSpace(val); v == "|" || v == ">" {
				blockIndent = indent
			} else {
				out[alert] = v
			}
		case "severity", "summary":
			if alert != "" {
				has[alert][key] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(has) == 0 {
		t.Fatalf("%s: no alerts", path)
	}
	for a, h := range has {
		if out[a] == "" || !h["severity"] || !h["summary"] {
			t.Errorf("%s: alert %s needs an expr, a severity label and a summary", path, a)
		}
	}
	for _, want := range []string{"CacheLockLost", "CacheBreakerOpen", "CacheHighErrorRate", "CacheFailOpenReads"} {
		if _, ok := has[want]; !ok {
			t.Errorf("%s: no alert %s", path, want)
		}
	}
	named := map[string]string{}
	for a, e := range out {
		named[path+": alert "+a] = e
	}
	return named
}
