package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"testing"
)

var reportFile = flag.String("report", "", "a `racefree bench --json` report to check; .ci/lanes/bench.sh passes the one it made")

// TestReportFile checks a report that the racefree binary wrote, reading
// the JSON itself rather than trusting the command's own Validate: every
// documented figure is present, every number finite, every ratio and
// throughput positive, every registered case measured and every scaled
// case has both axes. Without -report it has nothing to check.
func TestReportFile(t *testing.T) {
	if *reportFile == "" {
		t.Skip("no report to check: .ci/lanes/bench.sh runs `racefree bench --quick --json` and passes -args -report FILE")
	}
	data, err := os.ReadFile(*reportFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", *reportFile, err)
	}
	need := func(where string, m map[string]any, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no field %q", where, k)
			}
		}
	}
	positive := func(where string, m map[string]any, keys ...string) {
		t.Helper()
		for _, k := range keys {
			v, ok := m[k].(float64)
			if !ok || !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%s: %s = %v, want a positive finite number", where, k, m[k])
			}
		}
	}
	side := func(where string, v any) {
		t.Helper()
		m, _ := v.(map[string]any)
		need(where, m, "calls", "ok", "errors", "ops_per_sec", "p50_us", "p99_us")
		positive(where, m, "calls", "ok", "ops_per_sec", "p50_us", "p99_us")
	}
	need("report", doc, "schema", "command", "started", "engine", "server", "go_version", "os", "cpus", "settings", "cases", "scaling")
	if doc["schema"] != Schema {
		t.Errorf("schema %v, want %s", doc["schema"], Schema)
	}
	cases, _ := doc["cases"].([]any)
	seen := map[string]bool{}
	for i, c := range cases {
		m, _ := c.(map[string]any)
		name := fmt.Sprint(m["name"])
		where := fmt.Sprintf("case %d (%s)", i, name)
		seen[name] = true
		if m["skipped"] != nil || m["error"] != nil {
			t.Errorf("%s not measured: skipped %v, error %v", where, m["skipped"], m["error"])
			continue
		}
		need(where, m, "name", "title", "racefree", "raw", "raw_sql", "goroutines", "ratio", "ratio_lo", "ratio_hi",
			"confidence", "round_ratios", "racefree_stats", "raw_stats", "verdict")
		positive(where, m, "ratio", "ratio_lo", "ratio_hi", "confidence", "goroutines")
		rounds, _ := m["round_ratios"].([]any)
		if len(rounds) < 2 {
			t.Errorf("%s: %d round ratios", where, len(rounds))
		}
		for j, r := range rounds {
			positive(fmt.Sprintf("%s round %d", where, j+1), map[string]any{"ratio": r}, "ratio")
		}
		side(where+" racefree_stats", m["racefree_stats"])
		side(where+" raw_stats", m["raw_stats"])
	}
	for _, n := range Names() {
		if !seen[n] {
			t.Errorf("case %s missing from the report", n)
		}
	}
	scaling, _ := doc["scaling"].([]any)
	axes := map[string]int{}
	for i, s := range scaling {
		m, _ := s.(map[string]any)
		where := fmt.Sprintf("scaling %d (%v/%v)", i, m["case"], m["axis"])
		if m["error"] != nil {
			t.Errorf("%s failed: %v", where, m["error"])
		}
		need(where, m, "case", "axis", "points", "collapsed", "raw_collapsed", "verdict")
		axes[fmt.Sprint(m["case"])]++
		pts, _ := m["points"].([]any)
		if len(pts) == 0 {
			t.Errorf("%s: no points", where)
		}
		for _, p := range pts {
			pm, _ := p.(map[string]any)
			pw := fmt.Sprintf("%s at %v×%v", where, pm["procs"], pm["goroutines"])
			need(pw, pm, "procs", "goroutines", "racefree", "raw", "ratio")
			positive(pw, pm, "procs", "goroutines", "ratio")
			side(pw+" racefree", pm["racefree"])
			side(pw+" raw", pm["raw"])
		}
	}
	if len(axes) == 0 {
		t.Error("no scaling curve")
	}
	for c, n := range axes {
		if n != 2 {
			t.Errorf("case %s scaled along %d axes, want processes and goroutines", c, n)
		}
	}
	// And the command's own check agrees.
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&rep); err != nil {
		t.Error(err)
	}
	t.Logf("%s: %d cases, %d scaling curves on %s", *reportFile, len(cases), len(scaling), rep.Server)
}
