package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/bench"
)

func TestBench_Errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"UnknownCase", []string{"bench", "--cases", "hit,teleport"}, `--cases: unknown case "teleport"`},
		{"UnknownScaleCase", []string{"bench", "--scale", "nope"}, `--scale: unknown case "nope"`},
		{"NoCases", []string{"bench", "--cases", ","}, "--cases lists no case"},
		{"OneRound", []string{"bench", "--rounds", "1"}, "--rounds must be between 2 and 1000"},
		{"ZeroRound", []string{"bench", "--round", "0s"}, "--round must be positive"},
		{"Confidence", []string{"bench", "--confidence", "95"}, "--confidence must be between 0 and 1"},
		{"Procs", []string{"bench", "--procs", "1,x"}, `--procs: "x" is not a number between 1 and 64`},
		{"TooManyProcs", []string{"bench", "--procs", "65"}, `--procs: "65"`},
		{"Goroutines", []string{"bench", "--goroutines", "0"}, `--goroutines: "0"`},
		{"NoPoints", []string{"bench", "--procs", "", "--goroutines", ""}, "list no scaling point"},
		{"ProcGoroutines", []string{"bench", "--proc-goroutines", "0"}, "--proc-goroutines must be between 1 and 4096, got 0"},
		{"OneAccount", []string{"bench", "--accounts", "1"}, "--accounts must be between 2"},
		{"Stray", []string{"bench", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, context.Background(), tc.args...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, exitUsage, tc.want)
			}
			mustOneLine(t, stderr)
		})
	}
	t.Run("Unreachable", func(t *testing.T) {
		code, _, stderr := run(t, context.Background(), "bench", "--dsn", "mysql://root:secret@127.0.0.1:1/test")
		if code != exitFailure || !strings.Contains(stderr, "root:xxxxx@") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		mustOneLine(t, stderr)
	})
}

func TestBench_Help(t *testing.T) {
	code, stdout, _ := run(t, context.Background(), "bench", "-h")
	if code != exitOK || !strings.Contains(stdout, "Usage: racefree bench") || !strings.Contains(stdout, "-quick") {
		t.Fatalf("exit %d, help:\n%s", code, stdout)
	}
}

// TestBench_SQLite runs a small bench end to end on the default temporary
// SQLite database, scaling included (worker processes are this test
// binary, see TestMain), and checks all three outputs.
func TestBench_SQLite(t *testing.T) {
	dir := t.TempDir()
	html := filepath.Join(dir, "bench.html")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // watchdog
	defer cancel()
	args := []string{"bench", "--cases", "hit,transfer,lock", "--rounds", "2", "--round", "30ms",
		"--scale", "storm", "--procs", "1,2", "--goroutines", "1,8", "--scale-time", "100ms", "--html", html}
	code, stdout, stderr := run(t, ctx, append(args, "--json")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout)
	}
	if err := bench.Validate(&rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) != 3 || rep.Engine != "sqlite" || len(rep.Scaling) != 2 || len(rep.Scaling[0].Points) != 2 {
		t.Fatalf("report: %d cases on %s, scaling %+v", len(rep.Cases), rep.Engine, rep.Scaling)
	}
	if !strings.Contains(rep.Command, "racefree bench --cases hit,transfer,lock") || !strings.Contains(rep.Command, "temporary file") {
		t.Errorf("command %q", rep.Command)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(page), "<svg") != 3 {
		t.Errorf("HTML report has %d charts, want 3", strings.Count(string(page), "<svg"))
	}

	// The same as tables, without scaling.
	code, stdout, stderr = run(t, ctx, "bench", "--cases", "hit", "--rounds", "2", "--round", "20ms", "--scale", "none")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"racefree bench on SQLite", "ratio = racefree ÷ raw throughput", "hit", "interval"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "scaling:") || stderr != "" {
		t.Errorf("--scale none still scaled, or wrote to stderr %q:\n%s", stderr, stdout)
	}
}

func TestBench_Interrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	code, stdout, stderr := run(t, ctx, "bench", "--rounds", "50", "--round", "100ms", "--scale", "none")
	if code != exitInterrupted || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "interrupted: the run stopped before its end") {
		t.Errorf("stdout does not say the run was cut short:\n%s", stdout)
	}
}
