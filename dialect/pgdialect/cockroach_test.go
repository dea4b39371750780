package pgdialect_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/internal/fakedb"
	"github.com/racefree/racefree/session"
)

// CockroachDB cannot run on this project's machines: these tests hold the
// dialect to CockroachDB's documented rules (cockroach.go) against a fake
// server that answers as CockroachDB does.

// cockroachVersions are version() and server_version_num as releases of
// CockroachDB report them.
var cockroachVersions = []struct {
	version, num, server string
	xactLocks            bool
}{
	{"CockroachDB OSS v22.2.19 (x86_64-pc-linux-gnu, built 2024/02/02 17:22:51, go1.19.10)", "130000", "CockroachDB 22.2.19", false},
	{"CockroachDB CCL v24.1.2 (x86_64-pc-linux-gnu, built 2024/06/10 17:47:37, go1.22.3 X:nocoverageredesign)", "130000", "CockroachDB 24.1.2", false},
	{"CockroachDB CCL v26.2.5 (x86_64-pc-linux-gnu, built 2026/07/01 10:00:00, go1.25.1)", "130000", "CockroachDB 26.2.5", false},
	// From 26.3 CockroachDB reports PostgreSQL 18's server_version_num,
	// which must not turn on what PostgreSQL 18 has (RETURNING old.*).
	{"CockroachDB CCL v26.3.0 (x86_64-pc-linux-gnu, built 2026/08/20 10:00:00, go1.25.1)", "180000", "CockroachDB 26.3.0", true},
}

// fakeServer opens a pool on a fake server that answers version() and
// server_version_num as given, and the catalog and isolation queries the
// dialect sends, and returns it with its log.
func fakeServer(t *testing.T, version, num string) (session.Pool, *fakedb.DB) {
	t.Helper()
	srv := fakedb.NewServer(
		fakedb.Reply{Match: "SELECT version(), current_setting('server_version_num')",
			Columns: []string{"version", "current_setting"}, Rows: [][]driver.Value{{version, num}}},
		fakedb.Reply{Match: "SHOW transaction_isolation", Columns: []string{"transaction_isolation"}, Rows: [][]driver.Value{{"serializable"}}},
		fakedb.Reply{Match: "to_regclass", Columns: []string{"oid"}, Rows: [][]driver.Value{{int64(104)}}},
		fakedb.Reply{Match: "FROM pg_attribute", Columns: []string{"attname", "format_type", "nullable", "hasdef"}, Rows: [][]driver.Value{
			{"id", "bigint", false, true}, {"email", "text", false, false}}},
		fakedb.Reply{Match: "FROM pg_index", Columns: []string{"relname", "indisprimary", "nnd", "attname"}, Rows: [][]driver.Value{
			{"users_pkey", true, false, "id"}, {"users_email_key", false, false, "email"}}},
	)
	db, fake := fakedb.Open(fakedb.Hooks{Server: srv})
	t.Cleanup(func() { db.Close() })
	return session.SQLPool{DB: db}, fake
}

func TestCockroachDB_Detect(t *testing.T) {
	ctx := context.Background()
	for _, v := range cockroachVersions {
		t.Run(v.server, func(t *testing.T) {
			pool, fake := fakeServer(t, v.version, v.num)
			d := pgdialect.New()
			if err := d.Detect(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if !d.CockroachDB() || d.Server() != v.server {
				t.Errorf("CockroachDB() %v, Server() %q; want true, %q", d.CockroachDB(), d.Server(), v.server)
			}
			f := d.Features()
			for _, tc := range []struct {
				f    dialect.Feature
				name string
				want bool
			}{
				// pg_advisory_lock is a stub that locks nothing before
				// 26.3 and does not exist after: AdvisoryLocks promises
				// session locks too, so it is never claimed.
				{dialect.AdvisoryLocks, "AdvisoryLocks", false},
				{dialect.TableLocks, "TableLocks", false},
				{dialect.NullsNotDistinct, "NullsNotDistinct", false},
				{dialect.ClientRetries, "ClientRetries", true},
				{dialect.SerializableIsolation, "SerializableIsolation", true},
				{dialect.FailedStatementAbortsTx, "FailedStatementAbortsTx", true},
				{dialect.OnConflict, "OnConflict", true},
				{dialect.Returning, "Returning", true},
				{dialect.Savepoints, "Savepoints", true},
			} {
				if f.Has(tc.f) != tc.want {
					t.Errorf("%s: %v, want %v", tc.name, f.Has(tc.f), tc.want)
				}
			}
			if got := d.XactAdvisoryLocks(); got != v.xactLocks {
				t.Errorf("XactAdvisoryLocks() = %v, want %v", got, v.xactLocks)
			}

			// No xmax, no RETURNING old.*: no exact upsert flag.
			if expr, ok := d.UpsertInserted(`"id"`); ok {
				t.Errorf("UpsertInserted = %q, true; CockroachDB has neither xmax nor RETURNING old", expr)
			}

			// SERIALIZABLE by default: only a transaction known to run at
			// READ COMMITTED sees rows committed after its snapshot.
			for _, tc := range []struct {
				iso   sql.IsolationLevel
				known bool
				want  bool
			}{
				{sql.LevelDefault, true, false},
				{sql.LevelReadCommitted, true, true},
				{sql.LevelRepeatableRead, true, false},
				{sql.LevelSerializable, true, false},
				{sql.LevelReadCommitted, false, false},
			} {
				if clause, ok := d.FreshRead(tc.iso, tc.known); ok != tc.want || clause != "" {
					t.Errorf("FreshRead(%v, %v) = %q, %v; want \"\", %v", tc.iso, tc.known, clause, ok, tc.want)
				}
			}
			if iso, err := d.CurrentIsolation(ctx, pool); err != nil || iso != sql.LevelSerializable {
				t.Errorf("CurrentIsolation = %v, %v; want SERIALIZABLE", iso, err)
			}

			// ReadTable must not read pg_index.indnullsnotdistinct, which
			// CockroachDB's catalog does not have.
			tbl, err := d.ReadTable(ctx, pool, "users")
			if err != nil {
				t.Fatal(err)
			}
			if len(tbl.Unique) != 2 || tbl.Unique[1].NullsNotDistinct {
				t.Errorf("ReadTable: unique indexes %+v", tbl.Unique)
			}
			for _, stmt := range fake.Log() {
				if strings.Contains(stmt, "indnullsnotdistinct") {
					t.Errorf("sent to CockroachDB: %s", stmt)
				}
			}
		})
	}
}

// TestCockroachDB_PostgreSQL18Differs is the control: the same
// server_version_num from PostgreSQL 18 does turn on its upsert flag and
// NULLS NOT DISTINCT.
func TestCockroachDB_PostgreSQL18Differs(t *testing.T) {
	pool, _ := fakeServer(t, "PostgreSQL 18.1 on x86_64-pc-linux-gnu, compiled by gcc", "180001")
	d := pgdialect.New()
	if err := d.Detect(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	if expr, ok := d.UpsertInserted(`"id"`); !ok || !strings.Contains(expr, "old.") {
		t.Errorf("PostgreSQL 18: UpsertInserted = %q, %v; want RETURNING old.", expr, ok)
	}
	if d.CockroachDB() || !d.Features().Has(dialect.NullsNotDistinct|dialect.AdvisoryLocks) || !d.XactAdvisoryLocks() {
		t.Errorf("PostgreSQL 18: CockroachDB() %v, features %b", d.CockroachDB(), d.Features())
	}
}

// TestCockroachDB_Classify checks the errors of CockroachDB's client
// retry protocol and its ambiguous results.
func TestCockroachDB_Classify(t *testing.T) {
	d := pgdialect.New()
	retry := &pgconn.PgError{Code: "40001", Message: "restart transaction: TransactionRetryWithProtoRefreshError: ReadWithinUncertaintyIntervalError"}
	if ce := d.Classify(retry); ce.Class != dialect.ClassSerialization || !ce.Class.Retryable() || !errors.Is(ce, dialect.ErrSerialization) {
		t.Errorf("40001: %v, want a retryable serialization failure", ce.Class)
	}
	ambiguous := &pgconn.PgError{Code: "40003", Message: "result is ambiguous (error=rpc error: ...)"}
	if ce := d.Classify(ambiguous); ce.Class != dialect.ClassConnection || ce.Class.Retryable() {
		t.Errorf("40003: %v, want connection lost (it may have taken effect), not retryable", ce.Class)
	}
}
