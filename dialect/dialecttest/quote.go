package dialecttest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// hazardNames are identifiers that need quoting: mixed case, reserved
// words, spaces, punctuation, quote characters of every engine, non-ASCII.
var hazardNames = []string{"Größe", "select", "first name", "a.b", "a,b", `a"b`, "a`b", "a'b", "a?b", "$1", "x; DROP TABLE y; --", "日本"}

// testQuote checks that every name the engine allows is quoted into one
// identifier that refers to exactly that name: a table and columns with
// hazardous names are created through Quote and QuoteIdent, written and
// read back, and the catalog reports the names unchanged. Names no engine
// can take are refused with ErrInvalidIdent.
func testQuote(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	d := db.Dialect()
	ctx := context.Background()
	table := testdb.UniqueName("Quote Me") + `"` + "`"
	qt, err := d.Quote(table)
	if err != nil {
		t.Fatalf("Quote(%q): %v", table, err)
	}
	var cols []string
	for _, name := range hazardNames {
		qc, err := d.QuoteIdent(name)
		if err != nil {
			t.Fatalf("QuoteIdent(%q): %v", name, err)
		}
		cols = append(cols, qc+" INTEGER")
	}
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE "+qt+" ("+strings.Join(cols, ", ")+")"); err != nil {
		t.Fatalf("create table %s: %v", qt, err)
	}
	t.Cleanup(func() { _, _ = db.SQL().ExecContext(context.Background(), "DROP TABLE "+qt) })
	sr, ok := d.(dialect.SchemaReader)
	if !ok {
		t.Fatal("the dialect does not read the catalog")
	}
	tbl, err := sr.ReadTable(ctx, db.Session(), table)
	if err != nil {
		t.Fatalf("ReadTable(%q): %v", table, err)
	}
	var got []string
	for _, c := range tbl.Columns {
		got = append(got, c.Name)
	}
	if strings.Join(got, "\x00") != strings.Join(hazardNames, "\x00") {
		t.Fatalf("catalog columns %q, want %q", got, hazardNames)
	}
	bad := []string{"", "a\x00b", "\xff"}
	if d.Name() != "sqlite" { // SQLite has no length limit of its own
		bad = append(bad, strings.Repeat("x", 70))
	}
	for _, bad := range bad {
		if q, err := d.QuoteIdent(bad); !errors.Is(err, dialect.ErrInvalidIdent) {
			t.Errorf("QuoteIdent(%q) = %q, %v; want ErrInvalidIdent", bad, q, err)
		}
	}
	if q, err := d.Quote("a."); !errors.Is(err, dialect.ErrInvalidIdent) {
		t.Errorf(`Quote("a.") = %q, %v; want ErrInvalidIdent`, q, err)
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
