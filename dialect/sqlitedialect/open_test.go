package sqlitedialect

import (
	"strings"
	"testing"
)

func TestDriverDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		prefix  string
		want    []string
		notWant []string
	}{
		{dsn: "sqlite:/tmp/a.db", prefix: "file:/tmp/a.db?", want: []string{"busy_timeout%285000%29", "journal_mode%28WAL%29", "foreign_keys%281%29", "_txlock=immediate"}},
		{dsn: "/tmp/b.db", prefix: "file:/tmp/b.db?", want: []string{"_txlock=immediate"}},
		{dsn: "file:c.db?_pragma=busy_timeout(50)&_txlock=deferred", prefix: "file:c.db?", want: []string{"busy_timeout%2850%29", "_txlock=deferred"}, notWant: []string{"5000"}},
		{dsn: "sqlite::memory:", prefix: "file::memory:?", notWant: []string{"WAL"}},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			got, _, err := DriverDSN(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tc.prefix) {
				t.Fatalf("DriverDSN(%q) = %q, want prefix %q", tc.dsn, got, tc.prefix)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("DriverDSN(%q) = %q, missing %q", tc.dsn, got, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("DriverDSN(%q) = %q, should not contain %q", tc.dsn, got, w)
				}
			}
		})
	}
	if _, _, err := DriverDSN("sqlite:"); err == nil {
		t.Error("empty path: no error")
	}
}
