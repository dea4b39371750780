package sqlitedialect_test

import (
	"strings"
	"testing"

	"github.com/racefree/racefree/dialect/sqlitedialect"
)

// FuzzDriverDSN: no DSN makes DriverDSN panic; what it accepts becomes a
// driver DSN that keeps racefree's settings (IMMEDIATE write transactions,
// a busy timeout) unless the DSN set its own.
func FuzzDriverDSN(f *testing.F) {
	for _, s := range []string{
		"sqlite:lab.db", "sqlite://lab.db", "file:lab.db", "lab.db", ":memory:", "sqlite::memory:",
		"sqlite:lab.db?_pragma=busy_timeout(10)&_pragma=journal_mode(DELETE)", "sqlite:lab.db?_txlock=deferred",
		"sqlite:", "sqlite:?x=1", "sqlite:lab.db?%zz", "sqlite:lab.db?a=1&&b", "file:", "sqlite:a?b?c", "sqlite:/abs/path.db",
		"sqlite:lab.db#frag", "sqlite:\x00", "sqlite:lab.db?_pragma=foreign_keys(0)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		out, memory, err := sqlitedialect.DriverDSN(dsn)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sqlitedialect: ") {
				t.Fatalf("DriverDSN(%q): error %q does not say where it comes from", dsn, err)
			}
			return
		}
		if !strings.HasPrefix(out, "file:") || !strings.Contains(out, "_txlock=") || !strings.Contains(out, "busy_timeout") {
			t.Fatalf("DriverDSN(%q) = %q, which lacks racefree's settings", dsn, out)
		}
		if memory != strings.HasPrefix(out, "file::memory:?") {
			t.Fatalf("DriverDSN(%q) = %q, memory %v", dsn, out, memory)
		}
	})
}
