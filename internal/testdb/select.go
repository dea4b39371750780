package testdb

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// EnginesEnv selects the engines a test run covers: a comma-separated list
// of engine names from SelectableEngines. Unset or empty selects them all.
// A lane that tests one server (TiDB, another PostgreSQL version) sets it so
// that the other engines skip instead of failing under CI=true.
const EnginesEnv = "RACEFREE_ENGINES"

// SelectableEngines are the names RACEFREE_ENGINES accepts: the engines of
// Engines and the Galera cluster of GaleraDSNs.
var SelectableEngines = []string{"postgres", "mysql", "sqlite", "galera"}

// selection parses RACEFREE_ENGINES: nil selects every engine. A name it
// does not know is an error, so that a typo cannot make a lane pass by
// skipping everything.
func selection() ([]string, error) {
	v := strings.TrimSpace(os.Getenv(EnginesEnv))
	if v == "" {
		return nil, nil
	}
	var names []string
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(SelectableEngines, name) {
			return nil, fmt.Errorf("%s=%q: unknown engine %q (known: %s)",
				EnginesEnv, v, name, strings.Join(SelectableEngines, ", "))
		}
		names = append(names, name)
	}
	return names, nil
}

// Selected reports whether RACEFREE_ENGINES selects the engine called name.
// An invalid RACEFREE_ENGINES selects nothing; RequireSelected reports it.
func Selected(name string) bool {
	names, err := selection()
	return err == nil && (names == nil || slices.Contains(names, name))
}

// RequireSelected skips tb when RACEFREE_ENGINES leaves out the engine
// called name, also under CI=true: a lane that tests one engine leaves the
// others to the lanes that test them. It fails tb when RACEFREE_ENGINES
// names an engine that does not exist.
func RequireSelected(tb testing.TB, name string) {
	tb.Helper()
	names, err := selection()
	if err != nil {
		tb.Fatal(err)
	}
	if names != nil && !slices.Contains(names, name) {
		tb.Skipf("%s=%s: %s not selected", EnginesEnv, os.Getenv(EnginesEnv), name)
	}
}
