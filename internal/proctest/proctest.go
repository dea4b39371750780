// Package proctest runs a test's workers in separate OS processes by
// re-executing the test binary, so that tests prove guarantees across
// processes, not only across goroutines of one process.
//
// The parent calls Run with the name of a test function that acts as the
// child. That function starts with
//
//	args, ok := proctest.Child(t)
//	if !ok { t.Skip("runs only as a child of proctest.Run") }
//
// and reads its parameters from args. Every child waits for a common start
// time before working, so that they really run at the same moment.
package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	envChild = "RACEFREE_PROCTEST_CHILD"
	envArgs  = "RACEFREE_PROCTEST_ARGS"
	envIndex = "RACEFREE_PROCTEST_INDEX"
	envStart = "RACEFREE_PROCTEST_START"
)

// Args are the parameters a child receives.
type Args struct {
	// Index is the child's number, 0 to n-1.
	Index int
	// Values are the parent's parameters.
	Values map[string]string
}

// Int returns Values[key] as an int, or def.
func (a Args) Int(key string, def int) int {
	if n, err := strconv.Atoi(a.Values[key]); err == nil {
		return n
	}
	return def
}

// Child reports whether this process is a child started by Run for the
// running test, and if so waits for the common start time and returns its
// arguments.
func Child(tb testing.TB) (Args, bool) {
	tb.Helper()
	if os.Getenv(envChild) != tb.Name() {
		return Args{}, false
	}
	var a Args
	if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &a.Values); err != nil {
		tb.Fatalf("proctest: decode args: %v", err)
	}
	a.Index, _ = strconv.Atoi(os.Getenv(envIndex))
	if ns, err := strconv.ParseInt(os.Getenv(envStart), 10, 64); err == nil {
		time.Sleep(time.Until(time.Unix(0, ns)))
	}
	return a, true
}

// Result is one child's outcome.
type Result struct {
	Index  int
	Output string // combined stdout and stderr
	Err    error  // non-nil when the child failed or timed out
}

// Run starts n children running the test named child (a top-level test
// function name, or a full subtest path) with values, waits for all of
// them, and fails tb if any failed or ran longer than timeout (each is
// killed then). Outputs are returned in index order for parsing. The
// children start working together about startDelay after they are launched,
// once every process is up.
func Run(tb testing.TB, n int, child string, values map[string]string, timeout time.Duration) []Result {
	tb.Helper()
	enc, err := json.Marshal(values)
	if err != nil {
		tb.Fatalf("proctest: encode args: %v", err)
	}
	const startDelay = 750 * time.Millisecond
	start := time.Now().Add(startDelay).UnixNano()
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+runPattern(child)+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(),
				envChild+"="+child,
				envArgs+"="+string(enc),
				envIndex+"="+strconv.Itoa(i),
				envStart+"="+strconv.FormatInt(start, 10),
			)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if ctx.Err() != nil {
				err = fmt.Errorf("child %d killed after %v: %w", i, timeout, ctx.Err())
			}
			results[i] = Result{Index: i, Output: out.String(), Err: err}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.Err != nil {
			tb.Errorf("proctest: child %d of %s failed: %v\n%s", r.Index, child, r.Err, r.Output)
		} else if strings.Contains(r.Output, "--- SKIP") && !strings.Contains(r.Output, "--- PASS") {
			tb.Errorf("proctest: child %d of %s did not run (skipped):\n%s", r.Index, child, r.Output)
		}
	}
	return results
}

// runPattern turns a test path "TestA/sub" into a -test.run pattern that
// matches exactly that path.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = regexpQuote(p)
	}
	return strings.Join(parts, "$/^")
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Report prints a value from a child in a form the parent can find with
// Values: one line "PROCTEST key=value".
func Report(key string, value any) {
	fmt.Printf("PROCTEST %s=%v\n", key, value)
}

// Values collects the values children reported under key, one per Report
// call, across all results.
func Values(results []Result, key string) []string {
	var vs []string
	prefix := "PROCTEST " + key + "="
	for _, r := range results {
		for _, line := range strings.Split(r.Output, "\n") {
			if strings.HasPrefix(line, prefix) {
				vs = append(vs, strings.TrimPrefix(line, prefix))
			}
		}
	}
	return vs
}
