package sqlitedialect_test

import (
	"testing"

	"github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/internal/fuzzcheck"
	"github.com/racefree/racefree/internal/testdb"
)

// FuzzQuote: for any name, Quote gives a clear error or a quoted
// identifier that names exactly that name (fuzzcheck.CheckQuote).
// TestQuote_CatalogRoundTrip checks the seeds and the committed corpus on
// the real engine.
func FuzzQuote(f *testing.F) {
	for _, s := range fuzzcheck.IdentSeeds {
		f.Add(s)
	}
	d := sqlitedialect.New()
	f.Fuzz(func(t *testing.T, name string) {
		quoted, err := d.Quote(name)
		if perr := fuzzcheck.CheckQuote(name, quoted, err, '"'); perr != nil {
			t.Fatal(perr)
		}
	})
}

func TestQuote_CatalogRoundTrip(t *testing.T) {
	e, _ := testdb.Get("sqlite")
	db := e.Open(t)
	fuzzcheck.CatalogRoundTrip(t, db, fuzzcheck.Names(t, ".", "FuzzQuote"), func(table string) string { return "SELECT name FROM pragma_table_info('" + table + "') ORDER BY cid" })
}
