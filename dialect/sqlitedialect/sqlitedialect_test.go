package sqlitedialect_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/dialecttest"
	"github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/session"
)

// TestConformance runs the dialect contract suite on database files in
// the test's temporary directory, opened as racefree.Open opens them
// (skipped when RACEFREE_ENGINES leaves sqlite out).
func TestConformance(t *testing.T) {
	e, _ := testdb.Get("sqlite")
	e.Require(t)
	dialecttest.Run(t, dialecttest.Config{
		Open: func(t testing.TB) (session.Pool, dialect.Dialect) {
			db, err := sqlitedialect.Open(e.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return session.SQLPool{DB: db}, sqlitedialect.New()
		},
		// A recursive count that takes seconds; SQLite checks for
		// interruption between steps.
		SlowQuery: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000000) SELECT count(*) FROM c",
		// Embedded: there is no session to kill, so no KillSession.
		Skip: map[string]string{
			"Features/ReadOnlyTx": "modernc.org/sqlite begins a read-only transaction as a plain (deferred) BEGIN and does not refuse writes in it: " +
				"ReadOnly means \"do not take the write lock\" here, not \"refuse writes\" (issue 16: the dialect claims ReadOnlyTx)",
		},
	})
}

// TestOpen_Pragmas checks that every pooled connection Open makes runs
// with the settings concurrent writers need.
func TestOpen_Pragmas(t *testing.T) {
	db, err := sqlitedialect.Open("sqlite:" + filepath.Join(t.TempDir(), "pragmas.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for i := range 3 {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var mode string
		var busy, fk int
		for q, dest := range map[string]any{"PRAGMA journal_mode": &mode, "PRAGMA busy_timeout": &busy, "PRAGMA foreign_keys": &fk} {
			if err := conn.QueryRowContext(ctx, q).Scan(dest); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if mode != "wal" || busy != 5000 || fk != 1 {
			t.Fatalf("connection %d: journal_mode %s, busy_timeout %d, foreign_keys %d; want wal, 5000, 1", i, mode, busy, fk)
		}
	}
}

// TestDetect_SQLiteFeatures checks the features the dialect claims for the
// bundled SQLite, beyond what the contract suite proves of each.
func TestDetect_SQLiteFeatures(t *testing.T) {
	db, err := sqlitedialect.Open("sqlite:" + filepath.Join(t.TempDir(), "features.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := sqlitedialect.New()
	if err := d.Detect(context.Background(), session.SQLPool{DB: db}); err != nil {
		t.Fatal(err)
	}
	f := d.Features()
	if !f.Has(dialect.SingleWriter|dialect.OnConflict|dialect.Returning|dialect.Embedded) || f.Has(dialect.AdvisoryLocks) {
		t.Errorf("%s: features %b", d.Server(), f)
	}
}
