package dialecttest

import (
	"context"
	"strings"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

func testQuote(t *testing.T, e testdb.Engine) {
	d := e.Open(t).Dialect()
	q := `"`
	if d.Name() == "mysql" {
		q = "`"
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{name: "plain", in: "users", want: q + "users" + q},
		{name: "underscore and digits", in: "_t1$x", want: q + "_t1$x" + q},
		{name: "schema qualified", in: "app.users", want: q + "app" + q + "." + q + "users" + q},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.Quote(tc.in)
			if err != nil {
				t.Fatalf("Quote(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "a b", `a"b`, "a`b", "1abc", "a.b.c", "a;DROP TABLE x", "a.", ".a", "ä", strings.Repeat("x", 65), "a\x00"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			got, err := d.Quote(bad)
			if err == nil {
				t.Fatalf("Quote(%q) = %s, want an error", bad, got)
			}
			if !strings.Contains(err.Error(), "invalid identifier") {
				t.Fatalf("Quote(%q) error %q does not say the identifier is invalid", bad, err)
			}
		})
	}
	if got, want := d.Placeholder(2), map[string]string{"postgres": "$2"}[d.Name()]; want != "" && got != want {
		t.Fatalf("Placeholder(2) = %s, want %s", got, want)
	}
}

func testDetect(t *testing.T, e testdb.Engine) {
	d := e.Open(t).Dialect()
	if d.Server() == "" {
		t.Fatal("Server() is empty after Detect")
	}
	f := d.Features()
	if !f.Has(dialect.Savepoints) {
		t.Errorf("%s: want savepoints, features %b", d.Server(), f)
	}
	// MySQL and TiDB have no RETURNING at all: claiming it would send
	// statements the server rejects.
	noReturning := strings.HasPrefix(d.Server(), "MySQL") || isTiDB(d)
	if f.Has(dialect.Returning) == noReturning {
		t.Errorf("%s: RETURNING %v, want %v (features %b)", d.Server(), f.Has(dialect.Returning), !noReturning, f)
	}
	switch d.Name() {
	case "postgres":
		if !f.Has(dialect.AdvisoryLocks | dialect.OnConflict | dialect.SkipLocked | dialect.UpdateReturning) {
			t.Errorf("%s: missing PostgreSQL features %b", d.Server(), f)
		}
	case "mysql":
		if !f.Has(dialect.AdvisoryLocks|dialect.OnDuplicateKey) || f.Has(dialect.UpdateReturning) {
			t.Errorf("%s: wrong MySQL features %b", d.Server(), f)
		}
		if isTiDB(d) {
			testTiDBFeatures(t, e, d)
		}
	case "sqlite":
		if !f.Has(dialect.SingleWriter|dialect.OnConflict) || f.Has(dialect.AdvisoryLocks) {
			t.Errorf("%s: wrong SQLite features %b", d.Server(), f)
		}
	}
	t.Logf("%s features %b", d.Server(), f)
	if d.Name() == "sqlite" {
		testSQLitePragmas(t, e)
	}
}

// testSQLitePragmas checks that every pooled connection really runs with
// the settings concurrent writers need.
func testSQLitePragmas(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	ctx := context.Background()
	for i := range 3 {
		conn, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var mode string
		var busy, fk int
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || busy != 5000 || fk != 1 {
			t.Fatalf("connection %d: journal_mode %s, busy_timeout %d, foreign_keys %d; want wal, 5000, 1", i, mode, busy, fk)
		}
	}
}
