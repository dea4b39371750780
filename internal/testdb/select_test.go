package testdb

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Skip and Fatal record the message and end
// the goroutine, as the real ones do, without ending the outer test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

// record runs f on a recorder in a goroutine of its own, so that a skip or
// failure ends only that goroutine.
func record(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestSelected(t *testing.T) {
	tests := []struct {
		env  string
		want map[string]bool
	}{
		{env: "", want: map[string]bool{"postgres": true, "mysql": true, "sqlite": true, "galera": true}},
		{env: "postgres", want: map[string]bool{"postgres": true, "mysql": false, "sqlite": false, "galera": false}},
		{env: " mysql , galera", want: map[string]bool{"postgres": false, "mysql": true, "sqlite": false, "galera": true}},
		{env: "postgress", want: map[string]bool{"postgres": false, "mysql": false, "sqlite": false, "galera": false}},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(EnginesEnv, tc.env)
			for name, want := range tc.want {
				if got := Selected(name); got != want {
					t.Errorf("Selected(%q) = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestRequireSelected(t *testing.T) {
	tests := []struct {
		name, env, ci, engine string
		wantSkip, wantFail    string // substrings; empty means none
	}{
		{name: "AllByDefault", engine: "mysql"},
		{name: "Selected", env: "postgres", engine: "postgres"},
		{name: "LeftOutSkips", env: "postgres", engine: "mysql", wantSkip: "RACEFREE_ENGINES=postgres: mysql not selected"},
		{name: "LeftOutSkipsUnderCI", env: "postgres", ci: "true", engine: "galera", wantSkip: "galera not selected"},
		{name: "UnknownFails", env: "postgres,tidb", engine: "postgres", wantFail: `unknown engine "tidb"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnginesEnv, tc.env)
			t.Setenv("CI", tc.ci)
			r := record(t, func(tb testing.TB) { RequireSelected(tb, tc.engine) })
			checkOutcome(t, r, tc.wantSkip, tc.wantFail)
		})
	}
}

// TestRequire_SelectedUnreachable checks the promise lanes rely on: a
// selected engine whose server does not answer fails under CI=true, and
// skips with a message naming its DSN variable elsewhere.
func TestRequire_SelectedUnreachable(t *testing.T) {
	// Port 1 on loopback: nothing listens there, so the dial fails at once.
	dead := Engine{Name: "postgres", env: PostgresEnv, dsn: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"}
	t.Setenv(EnginesEnv, "postgres")

	t.Setenv("CI", "true")
	r := record(t, dead.Require)
	checkOutcome(t, r, "", "postgres server unreachable at "+dead.dsn+" (set RACEFREE_POSTGRES_DSN)")

	t.Setenv("CI", "")
	r = record(t, dead.Require)
	checkOutcome(t, r, "set RACEFREE_POSTGRES_DSN to its DSN", "")
}

func TestGaleraDSNs_NotSelectedSkipsUnderCI(t *testing.T) {
	t.Setenv(EnginesEnv, "mysql")
	t.Setenv("CI", "true")
	t.Setenv(GaleraEnv, "")
	r := record(t, func(tb testing.TB) { GaleraDSNs(tb) })
	checkOutcome(t, r, "galera not selected", "")
}

func checkOutcome(t *testing.T, r *recorder, wantSkip, wantFail string) {
	t.Helper()
	switch {
	case wantSkip == "" && r.skipped != "":
		t.Errorf("skipped: %s", r.skipped)
	case wantSkip != "" && !strings.Contains(r.skipped, wantSkip):
		t.Errorf("skip message %q, want it to contain %q", r.skipped, wantSkip)
	}
	switch {
	case wantFail == "" && r.failed != "":
		t.Errorf("failed: %s", r.failed)
	case wantFail != "" && !strings.Contains(r.failed, wantFail):
		t.Errorf("failure %q, want it to contain %q", r.failed, wantFail)
	}
}
