package thirdpartydialect_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/dialecttest"
	"github.com/racefree/racefree/session"

	"example.com/thirdpartydialect"
)

// TestContract runs racefree's dialect contract suite on this dialect,
// from outside racefree's module.
func TestContract(t *testing.T) {
	dialecttest.Run(t, dialecttest.Config{
		Open: func(t testing.TB) (session.Pool, dialect.Dialect) {
			dsn := "file:" + filepath.Join(t.TempDir(), "contract.db") +
				"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return session.SQLPool{DB: db}, thirdpartydialect.New()
		},
		SlowQuery: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000000) SELECT count(*) FROM c",
	})
}
