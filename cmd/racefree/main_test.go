package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/testdb"
)

// TestMain lets the test binary act as the lab's worker processes: the lab
// re-executes its own program, which under `go test` is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(lab.WorkerEnv) == "1" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	// An unreachable server is waited for (an outage, to racefree.Open);
	// the tests of that path need not wait the full 15 s.
	openTimeout = 3 * time.Second
	os.Exit(m.Run())
}

// run runs the command with args and returns its exit code and output.
func run(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// mustOneLine fails t unless s is exactly one line of text, with no panic or
// stack trace in it.
func mustOneLine(t *testing.T, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("stderr is not exactly one line:\n%s", s)
	}
	for _, bad := range []string{"panic", "goroutine ", ".go:"} {
		if strings.Contains(s, bad) {
			t.Errorf("stderr looks like a crash (%q):\n%s", bad, s)
		}
	}
}

func TestMain_Errors(t *testing.T) {
	sqlite := "sqlite:" + filepath.Join(t.TempDir(), "errors.db")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // in the one stderr line
	}{
		{"NoCommand", nil, exitUsage, ""},
		{"UnknownCommand", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"UnknownFlag", []string{"lab", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{"BadFlagValue", []string{"lab", "--workers", "many"}, exitUsage, "invalid value"},
		{"NoDSN", []string{"lab"}, exitUsage, "--dsn is required"},
		{"UnknownScenario", []string{"lab", "--dsn", sqlite, "--scenario", "nope"}, exitUsage, `unknown scenario "nope"`},
		{"UnknownStrategy", []string{"lab", "--dsn", sqlite, "--strategy", "naive,magic"}, exitUsage, `unknown strategy "magic"`},
		{"ZeroWorkers", []string{"lab", "--dsn", sqlite, "--workers", "0"}, exitUsage, "--workers must be"},
		{"StrayArgument", []string{"lab", "--dsn", sqlite, "extra"}, exitUsage, `unexpected argument "extra"`},
		{"BadDSNScheme", []string{"lab", "--dsn", "oracle://scott@db/x"}, exitFailure, `unknown DSN scheme "oracle"`},
		{"BadDSN", []string{"lab", "--dsn", "postgres://postgres@127.0.0.1:notaport/test"}, exitFailure, "open postgres://"},
		{"Unreachable", []string{"lab", "--dsn", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=3"}, exitFailure, "open postgres://"},
		{"UnreachableMySQL", []string{"lab", "--dsn", "mysql://root:secret@127.0.0.1:1/test"}, exitFailure, "root:xxxxx@"},
		{"ForUpdateOnSQLite", []string{"lab", "--dsn", sqlite, "--strategy", "forupdate"}, exitFailure, "strategy forupdate cannot run on sqlite"},
		{"CatchOnTransfer", []string{"lab", "--dsn", sqlite, "--scenario", "transfer", "--strategy", "catch"}, exitFailure, "strategy catch does not apply to scenario transfer"},
		{"OneAccount", []string{"lab", "--dsn", sqlite, "--scenario", "transfer", "--keys", "1"}, exitUsage, "at least 2"},
		{"DemoBadFlag", []string{"demo", "--procs", "0"}, exitUsage, "--procs must be"},
		{"VersionStray", []string{"version", "now"}, exitUsage, `version takes no arguments, got "now"`},
		{"DoctorNoTable", []string{"doctor", "--dsn", sqlite, "--lookup", "a"}, exitUsage, "--table is required"},
		{"DoctorMissingTable", []string{"doctor", "--dsn", sqlite, "--table", "nope", "--lookup", "a"}, exitFailure, `table "nope" does not exist`},
		{"DoctorBadIdent", []string{"doctor", "--dsn", sqlite, "--table", "x\x00y", "--lookup", "a"}, exitFailure, "invalid identifier"},
		// Any other text is one quoted name, looked up as it is.
		{"DoctorInjectionIsAName", []string{"doctor", "--dsn", sqlite, "--table", "x; drop table y", "--lookup", "a"}, exitFailure, `table "x; drop table y" does not exist`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, context.Background(), tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if tc.wantErr == "" {
				return // usage text
			}
			mustOneLine(t, stderr)
			if !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tc.wantErr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestMain_Help(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"lab", "-h"}, {"demo", "-h"}, {"doctor", "--help"}} {
		code, stdout, stderr := run(t, context.Background(), args...)
		if code != exitOK || stderr != "" || !strings.Contains(stdout, "racefree") {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

// A test binary is built from a checkout: its version is "(devel)". The
// tagged version is proven by .ci/installcheck, which installs a tag with
// go install and runs this command.
func TestMain_Version(t *testing.T) {
	code, stdout, stderr := run(t, context.Background(), "version")
	if code != exitOK || stderr != "" || !regexp.MustCompile(`^racefree \S+ \(go[0-9.]+.*\)\n$`).MatchString(stdout) {
		t.Errorf("version: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// labJSON runs the lab with --json and returns one result per strategy.
func labJSON(t *testing.T, ctx context.Context, args ...string) map[string]lab.Result {
	t.Helper()
	code, stdout, stderr := run(t, ctx, append([]string{"lab", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("lab %v: exit %d, stderr %s", args, code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr not empty (no progress bar when not on a terminal): %q", stderr)
	}
	out := map[string]lab.Result{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line is not a JSON object: %q: %v", sc.Text(), err)
		}
		for _, f := range []string{"scenario", "strategy", "engine", "workers", "procs", "keys", "ops", "ops_per_sec",
			"p50_ms", "p99_ms", "errors", "errors_by_class", "invariant_ok"} {
			if _, ok := raw[f]; !ok {
				t.Errorf("JSON line lacks %q: %s", f, sc.Text())
			}
		}
		var r lab.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if (r.Scenario == "goc" || r.Scenario == "m2m") != (r.Duplicates != nil) || (r.Scenario == "transfer" || r.Scenario == "counter") != (r.Drift != nil) {
			t.Errorf("%s/%s: duplicates %v, drift %v: wrong figure for the scenario", r.Scenario, r.Strategy, r.Duplicates, r.Drift)
		}
		if r.Ops == 0 {
			t.Errorf("%s/%s made no calls", r.Scenario, r.Strategy)
		}
		out[r.Strategy] = r
	}
	return out
}

// showsRace checks an existential claim — "this strategy can break the
// invariant" — which one quiet run does not refute: on a machine busy with
// other work the processes may hardly overlap. It runs the strategy again,
// up to three runs in all, until the race shows, and fails if it never does.
func showsRace(t *testing.T, args []string, r lab.Result, what string, shown func(lab.Result) bool) {
	t.Helper()
	for run := 1; !shown(r); run++ {
		if run == 3 {
			t.Errorf("%s %s: %s did not show in %d runs (last: %s; errors %v)", r.Scenario, r.Strategy, what, run, r.Invariant, r.ErrorsByClass)
			return
		}
		t.Logf("%s %s: %s did not show in run %d (%s); running it again", r.Scenario, r.Strategy, what, run, r.Invariant)
		r = labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", r.Strategy})...)[r.Strategy]
	}
}

// The lab's claims, proven with real worker processes: naive code and a
// process-local mutex leave duplicates and drift behind, racefree leaves
// neither and surfaces no error.
func TestLab_Engines(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 4*time.Minute)
		dsn := e.DSN(t)
		common := []string{"--dsn", dsn, "--workers", "8", "--procs", "2", "--duration", "1s", "--rotate", "50ms"}
		dups := func(r lab.Result) bool { return *r.Duplicates > 0 && !r.InvariantOK }
		drift := func(r lab.Result) bool { return *r.Drift != 0 && !r.InvariantOK }
		lost := func(r lab.Result) bool { return *r.Drift < 0 && !r.InvariantOK }

		t.Run("goc", func(t *testing.T) {
			args := slices.Concat(common, []string{"--scenario", "goc"})
			rs := labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "naive,mutex,racefree"})...)
			showsRace(t, args, rs["naive"], "duplicate rows", dups)
			showsRace(t, args, rs["mutex"], "duplicate rows across processes", dups)
			if r := rs["racefree"]; *r.Duplicates != 0 || r.Errors != 0 || !r.InvariantOK {
				t.Errorf("goc racefree: %d duplicates, %d errors %v", *r.Duplicates, r.Errors, r.ErrorSamples)
			}
		})
		t.Run("gocUnique", func(t *testing.T) {
			// With a unique index the same race surfaces as errors instead.
			args := slices.Concat(common, []string{"--scenario", "goc", "--unique"})
			r := labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "naive"})...)["naive"]
			if !r.UniqueIndex || *r.Duplicates != 0 {
				t.Errorf("goc naive with a unique index: unique_index %v, %d duplicates", r.UniqueIndex, *r.Duplicates)
			}
			showsRace(t, args, r, "unique-violation errors", func(r lab.Result) bool { return r.ErrorsByClass["unique violation"] > 0 })
		})
		t.Run("transfer", func(t *testing.T) {
			args := slices.Concat(common, []string{"--scenario", "transfer"})
			rs := labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "naive,racefree"})...)
			showsRace(t, args, rs["naive"], "money created or destroyed", drift)
			if r := rs["racefree"]; *r.Drift != 0 || r.Errors != 0 || r.ErrorsByClass["deadlock"] != 0 || !r.InvariantOK {
				t.Errorf("transfer racefree: drift %d, errors %v %v", *r.Drift, r.ErrorsByClass, r.ErrorSamples)
			}
		})
		t.Run("counter", func(t *testing.T) {
			args := slices.Concat(common, []string{"--scenario", "counter"})
			rs := labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "naive,racefree"})...)
			showsRace(t, args, rs["naive"], "lost increments", lost)
			if r := rs["racefree"]; *r.Drift != 0 || r.Errors != 0 || !r.InvariantOK {
				t.Errorf("counter racefree: drift %d, errors %v", *r.Drift, r.ErrorSamples)
			}
		})
		t.Run("m2m", func(t *testing.T) {
			args := slices.Concat(common, []string{"--scenario", "m2m"})
			rs := labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "naive,racefree"})...)
			showsRace(t, args, rs["naive"], "duplicate links", dups)
			if r := rs["racefree"]; *r.Duplicates != 0 || r.Errors != 0 || !r.InvariantOK {
				t.Errorf("m2m racefree: %d duplicates, errors %v", *r.Duplicates, r.ErrorSamples)
			}
		})
	})
}

// The mutex strategy is right within one process and wrong across two:
// the reason racefree never relies on one.
func TestLab_MutexOneProcess(t *testing.T) {
	testdb.Watchdog(t, 2*time.Minute)
	rs := labJSON(t, context.Background(), "--dsn", "sqlite:"+filepath.Join(t.TempDir(), "lab.db"),
		"--scenario", "goc", "--strategy", "mutex", "--workers", "8", "--procs", "1", "--duration", "1s")
	if r := rs["mutex"]; *r.Duplicates != 0 || r.Errors != 0 {
		t.Errorf("mutex in one process: %d duplicates, %d errors", *r.Duplicates, r.Errors)
	}
}

func TestLab_TableAndReport(t *testing.T) {
	testdb.Watchdog(t, 2*time.Minute)
	dir := t.TempDir()
	report := filepath.Join(dir, "lab.html")
	code, stdout, stderr := run(t, context.Background(), "lab", "--dsn", "sqlite:"+filepath.Join(dir, "lab.db"),
		"--scenario", "goc", "--strategy", "naive,catch", "--workers", "4", "--procs", "2", "--duration", "500ms", "--report", report)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"strategy", "ops/s", "p99 ms", "duplicates", "naive", "catch", "report written to"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	html, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	for _, want := range []string{"<!DOCTYPE html>", "<table>", "<svg", "Throughput", "p99 latency", ">naive<", ">catch<"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Self-contained: nothing to fetch.
	for _, bad := range []string{"src=", "href=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report refers to an outside resource (%q)", bad)
		}
	}
}

// An interrupt stops the run cleanly: the workers finish their calls in
// flight, the invariant is still checked, and what was measured is printed.
func TestLab_Interrupt(t *testing.T) {
	testdb.Watchdog(t, 2*time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2500*time.Millisecond, cancel)
	begin := time.Now()
	code, stdout, stderr := run(t, ctx, "lab", "--dsn", "sqlite:"+filepath.Join(t.TempDir(), "lab.db"),
		"--scenario", "transfer", "--strategy", "racefree,naive", "--workers", "4", "--procs", "2", "--duration", "60s")
	if took := time.Since(begin); took > 30*time.Second {
		t.Errorf("interrupted run took %v to stop", took)
	}
	if code != exitInterrupted {
		t.Errorf("exit code = %d, want %d", code, exitInterrupted)
	}
	mustOneLine(t, stderr)
	if !strings.Contains(stdout, "racefree") || !strings.Contains(stdout, "ok (interrupted)") {
		t.Errorf("stdout lacks the interrupted racefree row:\n%s", stdout)
	}
	if strings.Contains(stdout, "\nnaive") {
		t.Errorf("the strategy after the interrupt ran anyway:\n%s", stdout)
	}
}

func TestDemo(t *testing.T) {
	testdb.Watchdog(t, 2*time.Minute)
	code, stdout, stderr := run(t, context.Background(), "demo", "--duration", "1s", "--procs", "2", "--workers", "6")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"duplicate rows", "✓ no duplicates", "of money was", "✓ the accounts still hold 10,000 in all", "Why:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
}

// A real SIGINT, as Ctrl-C sends it to the parent: the command (this test
// binary re-executed as racefree) stops its worker processes, still checks
// the database and prints what was measured, and exits 130.
func TestLab_SIGINT(t *testing.T) {
	testdb.Watchdog(t, 2*time.Minute)
	cmd := exec.Command(os.Args[0], "lab", "--dsn", "sqlite:"+filepath.Join(t.TempDir(), "lab.db"),
		"--scenario", "counter", "--strategy", "racefree", "--workers", "4", "--procs", "2", "--duration", "60s")
	cmd.Env = append(os.Environ(), lab.WorkerEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("exit: %v, want code %d; stderr %s", err, exitInterrupted, stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "ok (interrupted)") || !strings.Contains(out, "as callers were told") {
		t.Errorf("stdout lacks the interrupted, checked row:\n%s", out)
	}
	mustOneLine(t, stderr.String())
}
