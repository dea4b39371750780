package gormtest

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

// Environment of a child process started by RunProcs.
const (
	envChild = "GORMRF_PROC_CHILD"
	envArgs  = "GORMRF_PROC_ARGS"
	envIndex = "GORMRF_PROC_INDEX"
	envStart = "GORMRF_PROC_START"
)

// Child reports whether this process is a child RunProcs started for the
// running test; if so it waits for the common start time and returns the
// parent's values and its index.
func Child(tb testing.TB) (values map[string]string, index int, ok bool) {
	tb.Helper()
	if os.Getenv(envChild) != tb.Name() {
		return nil, 0, false
	}
	if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &values); err != nil {
		tb.Fatalf("gormtest: decode child args: %v", err)
	}
	index, _ = strconv.Atoi(os.Getenv(envIndex))
	if ns, err := strconv.ParseInt(os.Getenv(envStart), 10, 64); err == nil {
		time.Sleep(time.Until(time.Unix(0, ns)))
	}
	return values, index, true
}

// RunProcs re-executes the test binary n times, each running only the test
// named child (a full test path) as a child, with values; the children
// start working together once all are up. It fails tb if a child fails,
// skips or outlives timeout, and returns their outputs.
func RunProcs(tb testing.TB, n int, child string, values map[string]string, timeout time.Duration) []string {
	tb.Helper()
	enc, err := json.Marshal(values)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now().Add(time.Second).UnixNano()
	pattern := "^" + strings.ReplaceAll(child, "/", "$/^") + "$"
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+pattern, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), envChild+"="+child, envArgs+"="+string(enc),
				envIndex+"="+strconv.Itoa(i), envStart+"="+strconv.FormatInt(start, 10))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			errs[i] = cmd.Run()
			if ctx.Err() != nil {
				errs[i] = fmt.Errorf("killed after %v: %w", timeout, ctx.Err())
			}
			outs[i] = out.String()
		})
	}
	wg.Wait()
	for i := range n {
		switch {
		case errs[i] != nil:
			tb.Errorf("child %d of %s failed: %v\n%s", i, child, errs[i], outs[i])
		case !strings.Contains(outs[i], "--- PASS"):
			tb.Errorf("child %d of %s did not run:\n%s", i, child, outs[i])
		}
	}
	return outs
}

// Report prints a value for the parent to collect with Collect.
func Report(key string, value any) { fmt.Printf("GORMTEST %s=%v\n", key, value) }

// Collect returns every value the children reported under key.
func Collect(outs []string, key string) []string {
	var vs []string
	prefix := "GORMTEST " + key + "="
	for _, out := range outs {
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				vs = append(vs, v)
			}
		}
	}
	return vs
}
