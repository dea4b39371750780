package pgdialect_test

import (
	"testing"

	"github.com/racefree/racefree/dialect/pgdialect"
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
	d := pgdialect.New()
	f.Fuzz(func(t *testing.T, name string) {
		quoted, err := d.Quote(name)
		if perr := fuzzcheck.CheckQuote(name, quoted, err, '"'); perr != nil {
			t.Fatal(perr)
		}
	})
}

func TestQuote_CatalogRoundTrip(t *testing.T) {
	e, _ := testdb.Get("postgres")
	db := e.Open(t)
	fuzzcheck.CatalogRoundTrip(t, db, fuzzcheck.Names(t, ".", "FuzzQuote"), func(table string) string {
		return "SELECT attname FROM pg_attribute WHERE attrelid = '" + table + "'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
	})
}
