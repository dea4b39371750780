package dialecttest

import "testing"

// TestChecks keeps the check list sound: every path unique, and
// Config.Skip paths recognised for checks and for groups only.
func TestChecks(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range checks {
		if seen[c.path] {
			t.Errorf("check %q listed twice", c.path)
		}
		seen[c.path] = true
	}
	for path, want := range map[string]bool{
		"Features/ForUpdate":           true,
		"Capabilities/IsolationReader": true,
		"Locks":                        true,
		"Features/ForUpdat":            false,
		"Nope":                         false,
	} {
		if got := knownPath(path); got != want {
			t.Errorf("knownPath(%q) = %v, want %v", path, got, want)
		}
	}
}
