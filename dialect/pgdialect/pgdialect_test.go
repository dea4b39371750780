package pgdialect_test

import (
	"context"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/dialecttest"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/session"
)

// TestConformance runs the dialect contract suite against the PostgreSQL
// server testdb finds (RACEFREE_POSTGRES_DSN).
func TestConformance(t *testing.T) {
	e, _ := testdb.Get("postgres")
	e.Require(t)
	dialecttest.Run(t, dialecttest.Config{
		Open: func(t testing.TB) (session.Pool, dialect.Dialect) {
			db, err := pgdialect.Open(e.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return session.SQLPool{DB: db}, pgdialect.New()
		},
		SlowQuery: "SELECT pg_sleep(10)",
		KillSession: func(ctx context.Context, pool session.Pool, victim session.Querier) error {
			var pid int64
			if err := victim.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return err
			}
			_, err := pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
			return err
		},
	})
}

// TestDetect_PostgreSQLFeatures checks the features every PostgreSQL the
// dialect supports has, beyond what the contract suite proves of each.
func TestDetect_PostgreSQLFeatures(t *testing.T) {
	e, _ := testdb.Get("postgres")
	d := e.Open(t).Dialect()
	want := dialect.Returning | dialect.UpdateReturning | dialect.OnConflict | dialect.Savepoints |
		dialect.AdvisoryLocks | dialect.ForUpdate | dialect.ForShare | dialect.SkipLocked | dialect.NoWait |
		dialect.TableLocks | dialect.FailedStatementAbortsTx | dialect.SerializableIsolation | dialect.ReadOnlyTx
	if f := d.Features(); !f.Has(want) || f.Has(dialect.ClientRetries) {
		t.Errorf("%s: features %b, want %b and no ClientRetries", d.Server(), f, want)
	}
}
