package dialecttest

import (
	"errors"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// hazardNames are identifiers that need quoting: mixed case, reserved
// words, spaces, punctuation, the quote characters of every engine,
// placeholders, statement text, non-ASCII. Every engine racefree knows
// allows them all.
var hazardNames = []string{"Größe", "select", "first name", "a.b", "a,b", `a"b`, "a`b", "a'b", "a?b", "$1", "x; DROP TABLE y; --", "日本"}

// testQuoteRoundTrip creates a table and columns with hazardous names
// through Quote and QuoteIdent, writes a distinct value into each column
// by name and reads each back by name, so that every quoted name refers to
// exactly its own column; then, when the dialect reads the catalog, the
// catalog must report every name unchanged.
func testQuoteRoundTrip(h *h) {
	table := uniqueName("Quote Me") + `"` + "`"
	qt := h.quote(table)
	var defs, cols []string
	for _, name := range hazardNames {
		qc, err := h.d.QuoteIdent(name)
		if err != nil {
			h.t.Fatalf("QuoteIdent(%q): %v", name, err)
		}
		cols = append(cols, qc)
		defs = append(defs, qc+" INTEGER")
	}
	if _, err := h.pool.Exec(h.ctx, "CREATE TABLE "+qt+" ("+strings.Join(defs, ", ")+")"); err != nil {
		h.t.Fatalf("create table %s: %v", qt, err)
	}
	h.t.Cleanup(func() { _, _ = h.pool.Exec(h.ctx, "DROP TABLE "+qt) })

	args := make([]any, len(cols))
	for i := range args {
		args[i] = int64(i + 1)
	}
	h.exec("INSERT INTO "+qt+" ("+strings.Join(cols, ", ")+") VALUES ("+h.ph(1, len(cols))+")", args...)
	for i, qc := range cols {
		if got := h.ints(h.pool, "SELECT "+qc+" FROM "+qt); len(got) != 1 || got[0] != int64(i+1) {
			h.t.Errorf("column %q (%s) reads %v, want [%d]", hazardNames[i], qc, got, i+1)
		}
	}

	sr, ok := h.d.(dialect.SchemaReader)
	if !ok {
		h.t.Logf("%s reads no catalog (no dialect.SchemaReader): names checked through statements only", h.d.Server())
		return
	}
	tbl, err := sr.ReadTable(h.ctx, h.pool, table)
	if err != nil {
		h.t.Fatalf("ReadTable(%q): %v", table, err)
	}
	var got []string
	for _, c := range tbl.Columns {
		got = append(got, c.Name)
	}
	if strings.Join(got, "\x00") != strings.Join(hazardNames, "\x00") {
		h.t.Fatalf("catalog columns %q, want %q", got, hazardNames)
	}
}

// testQuoteRefused checks the names no engine can take, and long names:
// a dialect either refuses a name with ErrInvalidIdent or keeps it whole
// (an engine that silently truncated it would make two names one).
func testQuoteRefused(h *h) {
	for _, bad := range []string{"", "a\x00b", "\xff"} {
		if q, err := h.d.QuoteIdent(bad); !errors.Is(err, dialect.ErrInvalidIdent) {
			h.t.Errorf("QuoteIdent(%q) = %q, %v; want ErrInvalidIdent", bad, q, err)
		}
		if q, err := h.d.Quote(bad); !errors.Is(err, dialect.ErrInvalidIdent) {
			h.t.Errorf("Quote(%q) = %q, %v; want ErrInvalidIdent", bad, q, err)
		}
	}
	for _, bad := range []string{"a.", ".a"} {
		if q, err := h.d.Quote(bad); !errors.Is(err, dialect.ErrInvalidIdent) {
			h.t.Errorf("Quote(%q) = %q, %v; want ErrInvalidIdent", bad, q, err)
		}
	}
	for _, n := range []int{70, 200} {
		long := "c" + strings.Repeat("x", n-1)
		qc, err := h.d.QuoteIdent(long)
		if err != nil {
			if !errors.Is(err, dialect.ErrInvalidIdent) {
				h.t.Errorf("QuoteIdent(%d bytes): %v, want nil or ErrInvalidIdent", n, err)
			}
			continue
		}
		// Accepted: the column must exist under the whole name.
		name, qt := h.table("long", "id INTEGER PRIMARY KEY, "+qc+" INTEGER")
		h.exec("INSERT INTO " + qt + " (id, " + qc + ") VALUES (1, 7)")
		if got := h.ints(h.pool, "SELECT "+qc+" FROM "+qt); len(got) != 1 || got[0] != 7 {
			h.t.Errorf("column of %d bytes reads %v, want [7]", n, got)
		}
		if sr, ok := h.d.(dialect.SchemaReader); ok {
			tbl, err := sr.ReadTable(h.ctx, h.pool, name)
			if err != nil {
				h.t.Fatalf("ReadTable(%q): %v", name, err)
			}
			if _, ok := tbl.Column(long); !ok {
				h.t.Errorf("QuoteIdent accepted a name of %d bytes, but the catalog does not know it whole: %+v", n, tbl.Columns)
			}
		}
	}
}

// testPlaceholder binds two parameters by the dialect's placeholders.
func testPlaceholder(h *h) {
	_, qt := h.table("ph", "id INTEGER PRIMARY KEY, v VARCHAR(20) NOT NULL")
	h.exec("INSERT INTO "+qt+" (id, v) VALUES ("+h.ph(1, 2)+")", int64(1), "one")
	h.exec("INSERT INTO "+qt+" (id, v) VALUES ("+h.ph(1, 2)+")", int64(2), "two")
	var v string
	q := "SELECT v FROM " + qt + " WHERE id = " + h.d.Placeholder(1) + " AND v <> " + h.d.Placeholder(2)
	if err := h.pool.QueryRow(h.ctx, q, int64(2), "one").Scan(&v); err != nil || v != "two" {
		h.t.Fatalf("%s with (2, one): %q, %v; want two", q, v, err)
	}
}
