package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func goodSide(rate float64) SideStats {
	return SideStats{Calls: 100, OK: 100, OpsPerSec: rate, P50us: 40, P99us: 90}
}

func goodCase() CaseResult {
	return CaseResult{
		Name: "hit", Title: "get-or-create, existing row", Racefree: "GetOrCreate", Raw: "SELECT by primary key",
		RawSQL: "SELECT id FROM t WHERE id = $1", Goroutines: 1,
		Ratio: 0.97, RatioLo: 0.95, RatioHi: 0.99, Confidence: 0.95, RoundRatios: []float64{0.96, 0.98},
		RacefreeStats: goodSide(970), RawStats: goodSide(1000), Verdict: "racefree slower: 95–99 % of raw throughput",
	}
}

func goodReport() *Report {
	pt := func(procs, gor int) ScalePoint {
		return ScalePoint{Procs: procs, Goroutines: gor, Racefree: goodSide(900), Raw: goodSide(1000), Ratio: 0.9}
	}
	second := goodCase()
	second.Name, second.Ratio, second.RatioLo, second.RatioHi = "batch", 30, 20, 40
	return &Report{
		Schema: Schema, Command: "racefree bench --quick", Started: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		Engine: "sqlite", Server: "SQLite 3.50", GoVersion: "go1.26", OS: "linux/amd64", CPUs: 2,
		Settings: Settings{Quick: true, Rounds: 4, SegmentMS: 100, WarmupMS: 100, Confidence: 0.95, Batch: 100, Accounts: 100,
			ScaleMS: 300, Procs: []int{1, 4}, Goroutines: []int{1, 16}, Pool: 32},
		Cases: []CaseResult{goodCase(), second, {Name: "lock", Title: "named lock", Skipped: "no named lock: not supported on this engine"}},
		Scaling: []ScaleResult{
			{Case: "hit", Axis: AxisProcesses, Points: []ScalePoint{pt(1, 1), pt(4, 1)}, Verdict: "no collapse"},
			{Case: "hit", Axis: AxisGoroutines, Points: []ScalePoint{pt(1, 1), pt(1, 16)}, Verdict: "no collapse"},
		},
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(goodReport()); err != nil {
		t.Fatalf("a complete report: %v", err)
	}
	tests := []struct {
		name   string
		break_ func(r *Report)
		want   string
	}{
		{"Schema", func(r *Report) { r.Schema = "" }, "schema"},
		{"NoCases", func(r *Report) { r.Cases = nil }, "no cases"},
		{"AllSkipped", func(r *Report) { r.Cases = r.Cases[2:] }, "no case was measured"},
		{"NaNRatio", func(r *Report) { r.Cases[0].Ratio = math.NaN() }, "case hit: ratio"},
		{"InfHi", func(r *Report) { r.Cases[0].RatioHi = math.Inf(1) }, "case hit: ratio"},
		{"RatioOutsideInterval", func(r *Report) { r.Cases[0].Ratio = 2 }, "case hit: ratio"},
		{"OneRound", func(r *Report) { r.Cases[0].RoundRatios = r.Cases[0].RoundRatios[:1] }, "round ratios"},
		{"NoP99", func(r *Report) { r.Cases[1].RawStats.P99us = 0 }, "case batch raw"},
		{"P99BelowP50", func(r *Report) { r.Cases[1].RacefreeStats.P99us = 1 }, "case batch racefree"},
		{"NoCalls", func(r *Report) { r.Cases[0].RawStats.OK = 0 }, "case hit raw"},
		{"FailedCase", func(r *Report) { r.Cases[0].Error = "boom" }, "case hit failed: boom"},
		{"NoPoints", func(r *Report) { r.Scaling[0].Points = nil }, "no points"},
		{"PointNaN", func(r *Report) { r.Scaling[1].Points[1].Racefree.OpsPerSec = math.NaN() }, "at 1×16 racefree"},
		{"NoVerdict", func(r *Report) { r.Scaling[1].Verdict = "" }, "no verdict"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := goodReport()
			tc.break_(r)
			err := Validate(r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// jsonKeys lists the JSON field names of t's struct fields, nested ones
// as parent.child, following slices and structs (time.Time is a leaf).
func jsonKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() {
		return nil
	}
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, prefix+name)
		out = append(out, jsonKeys(f.Type, prefix+name+".")...)
	}
	return out
}

// TestReport_JSONFieldsStable pins the JSON field names: renaming one
// breaks every script that reads the report, so it must be a deliberate
// change of Schema, of this list and of docs/bench.md.
func TestReport_JSONFieldsStable(t *testing.T) {
	want := []string{
		"schema", "command", "started", "engine", "server", "go_version", "os", "cpus",
		"settings", "settings.quick", "settings.rounds", "settings.segment_ms", "settings.warmup_ms", "settings.confidence",
		"settings.batch", "settings.accounts", "settings.scale_ms", "settings.procs", "settings.goroutines", "settings.proc_goroutines", "settings.pool",
		"cases", "cases.name", "cases.title", "cases.racefree", "cases.raw", "cases.raw_sql", "cases.goroutines",
		"cases.ratio", "cases.ratio_lo", "cases.ratio_hi", "cases.confidence", "cases.round_ratios",
		"cases.racefree_stats", "cases.racefree_stats.calls", "cases.racefree_stats.ok", "cases.racefree_stats.errors",
		"cases.racefree_stats.error_sample", "cases.racefree_stats.ops_per_sec", "cases.racefree_stats.p50_us", "cases.racefree_stats.p99_us",
		"cases.raw_stats", "cases.raw_stats.calls", "cases.raw_stats.ok", "cases.raw_stats.errors",
		"cases.raw_stats.error_sample", "cases.raw_stats.ops_per_sec", "cases.raw_stats.p50_us", "cases.raw_stats.p99_us",
		"cases.verdict", "cases.skipped", "cases.error",
		"scaling", "scaling.case", "scaling.axis", "scaling.points", "scaling.points.procs", "scaling.points.goroutines",
		"scaling.points.racefree", "scaling.points.racefree.calls", "scaling.points.racefree.ok", "scaling.points.racefree.errors",
		"scaling.points.racefree.error_sample", "scaling.points.racefree.ops_per_sec", "scaling.points.racefree.p50_us", "scaling.points.racefree.p99_us",
		"scaling.points.raw", "scaling.points.raw.calls", "scaling.points.raw.ok", "scaling.points.raw.errors",
		"scaling.points.raw.error_sample", "scaling.points.raw.ops_per_sec", "scaling.points.raw.p50_us", "scaling.points.raw.p99_us",
		"scaling.points.ratio", "scaling.collapsed", "scaling.raw_collapsed", "scaling.verdict", "scaling.error",
		"interrupted",
	}
	got := jsonKeys(reflect.TypeFor[Report](), "")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("JSON fields changed:\n got %v\nwant %v", got, want)
	}
}

// TestReport_JSONFieldsDocumented keeps docs/bench.md true: every field
// name appears there in backquotes.
func TestReport_JSONFieldsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/bench.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range jsonKeys(reflect.TypeFor[Report](), "") {
		leaf := k[strings.LastIndexByte(k, '.')+1:]
		if seen[leaf] {
			continue
		}
		seen[leaf] = true
		if !bytes.Contains(doc, []byte("`"+leaf+"`")) {
			t.Errorf("docs/bench.md does not document the JSON field `%s`", leaf)
		}
	}
}

func TestReport_JSONRoundTrip(t *testing.T) {
	r := goodReport()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, back) {
		t.Fatalf("round trip changed the report:\n%+v\n%+v", *r, back)
	}
	if err := Validate(&back); err != nil {
		t.Fatal(err)
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, goodReport()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"racefree bench on SQLite 3.50", "racefree bench --quick", "0.97", "0.95–0.99", "30.00",
		"skipped: no named lock", "scaling: hit, more processes", "4×1", "1×16", "no collapse"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The ratio table is aligned: its header and measured rows are
	// equally wide, and the ratio column ends at the same place.
	lines := strings.Split(out, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "case") && strings.Contains(l, "ratio") })
	if start < 0 {
		t.Fatalf("no header:\n%s", out)
	}
	header := lines[start]
	end := strings.Index(header, "ratio") + len("ratio")
	for _, l := range lines[start+1 : start+3] {
		if len([]rune(l)) != len([]rune(header)) {
			t.Errorf("row %q is not as wide as the header %q", l, header)
		}
		if l[end-1] == ' ' {
			t.Errorf("row %q: the ratio column does not end under its header", l)
		}
	}
}

func TestWriteHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, goodReport()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "<svg"); n != 3 {
		t.Errorf("%d charts, want 3 (ratios, scaling throughput, scaling p99)", n)
	}
	for _, want := range []string{"<!DOCTYPE html>", "racefree bench on SQLite 3.50", "SELECT id FROM t WHERE id = $1",
		"skipped: no named lock", "Scaling: hit", "more goroutines", "no collapse"} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: nothing to fetch, no script.
	for _, bad := range []string{"<script", "src=", "<link", "@import", "<?xml", "https://"} {
		if strings.Contains(out, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

func TestWriteHTML_NothingMeasured(t *testing.T) {
	r := goodReport()
	r.Cases = r.Cases[2:]
	r.Scaling = nil
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<svg") {
		t.Error("a chart of nothing")
	}
}
