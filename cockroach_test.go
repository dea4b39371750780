package racefree_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/internal/fakedb"
)

// CockroachDB cannot run on this project's machines. These tests run
// racefree's verbs on pgdialect against a fake server that answers as
// CockroachDB v24.1 does, and check what racefree sends it: the strategy
// it picks, the statements, the retries. They are proof of the design,
// not of a real server (docs/engines.md).

// crdbRow is the row type of the CockroachDB tests.
type crdbRow struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
}

// fakeCockroach returns a DB over a fake CockroachDB with two tables:
// users, whose email has a unique index, and tags, whose email has none.
// Extra replies come first, so that they can fail a statement.
func fakeCockroach(t *testing.T, extra ...fakedb.Reply) (*racefree.DB, *fakedb.DB, *fakedb.Server) {
	t.Helper()
	oids := map[string]int64{`"users"`: 101, `"tags"`: 102}
	replies := append(extra,
		fakedb.Reply{Match: "SELECT version(), current_setting('server_version_num')", Columns: []string{"version", "num"},
			Rows: [][]driver.Value{{"CockroachDB CCL v24.1.2 (x86_64-pc-linux-gnu, built 2024/06/10 17:47:37, go1.22.3)", "130000"}}},
		fakedb.Reply{Match: "SHOW transaction_isolation", Columns: []string{"transaction_isolation"}, Rows: [][]driver.Value{{"serializable"}}},
		fakedb.Reply{Match: "to_regclass", Columns: []string{"oid"}, RowsFunc: func(args []driver.NamedValue) [][]driver.Value {
			return [][]driver.Value{{oids[args[0].Value.(string)]}}
		}},
		fakedb.Reply{Match: "FROM pg_attribute", Columns: []string{"attname", "type", "nullable", "hasdef"}, Rows: [][]driver.Value{
			{"id", "bigint", false, true}, {"email", "text", false, false}}},
		fakedb.Reply{Match: "FROM pg_index", Columns: []string{"relname", "primary", "nnd", "attname"}, RowsFunc: func(args []driver.NamedValue) [][]driver.Value {
			rows := [][]driver.Value{{"pk", true, false, "id"}}
			if args[0].Value.(int64) == oids[`"users"`] {
				rows = append(rows, []driver.Value{"users_email_key", false, false, "email"})
			}
			return rows
		}},
		// The lookups find nothing; the inserts create row 7.
		fakedb.Reply{Match: "SELECT", Columns: []string{"id", "email"}},
		fakedb.Reply{Match: "UPDATE", Columns: []string{"id", "email"}},
		fakedb.Reply{Match: "INSERT", Columns: []string{"id", "email"}, RowsFunc: func(args []driver.NamedValue) [][]driver.Value {
			return [][]driver.Value{{int64(7), args[0].Value}}
		}},
	)
	srv := fakedb.NewServer(replies...)
	sqlDB, fake := fakedb.Open(fakedb.Hooks{Server: srv})
	t.Cleanup(func() { sqlDB.Close() })
	db, err := racefree.New(context.Background(), sqlDB, pgdialect.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if got := db.Dialect().Server(); got != "CockroachDB 24.1.2" {
		t.Fatalf("Server() = %q", got)
	}
	return db, fake, srv
}

// sent fails t when a statement of log contains one of never, and returns
// the log as one text.
func sent(t *testing.T, log []string, never ...string) string {
	t.Helper()
	for _, stmt := range log {
		for _, n := range never {
			if strings.Contains(stmt, n) {
				t.Errorf("sent to CockroachDB: %s", stmt)
			}
		}
	}
	text := strings.Join(log, "\n")
	t.Logf("sent to the fake CockroachDB:\n%s", text)
	return text
}

// TestCockroachDB_GetOrCreateStrategies: with a covering unique index the
// constraint strategy (INSERT … ON CONFLICT DO NOTHING RETURNING);
// without one, not an advisory lock, which CockroachDB does not have, but
// the serializable strategy: SELECT and INSERT in a SERIALIZABLE
// transaction, whose conflicts CockroachDB fails with 40001 for RunInTx
// to retry.
func TestCockroachDB_GetOrCreateStrategies(t *testing.T) {
	ctx := context.Background()
	db, fake, _ := fakeCockroach(t)

	row, created, err := racefree.GetOrCreate[crdbRow](ctx, db, "users", racefree.Values{"email": "a@x"}, nil, racefree.Options{})
	if err != nil || !created || row.ID != 7 {
		t.Fatalf("users: %+v, %v, %v", row, created, err)
	}
	log := sent(t, fake.Log(), "pg_advisory", "racefree_locks", "xmax", "indnullsnotdistinct")
	if !strings.Contains(log, "ON CONFLICT DO NOTHING RETURNING") {
		t.Errorf("users: no INSERT … ON CONFLICT DO NOTHING RETURNING in\n%s", log)
	}

	before := len(fake.Log())
	row, created, err = racefree.GetOrCreate[crdbRow](ctx, db, "tags", racefree.Values{"email": "a@x"}, nil, racefree.Options{})
	if err != nil || !created || row.ID != 7 {
		t.Fatalf("tags: %+v, %v, %v", row, created, err)
	}
	log = sent(t, fake.Log()[before:], "pg_advisory", "racefree_locks")
	if !strings.Contains(log, "BEGIN ISOLATION LEVEL SERIALIZABLE") || !strings.Contains(log, "COMMIT") {
		t.Errorf("tags (no covering index): want the serializable strategy, sent\n%s", log)
	}
}

// TestCockroachDB_UpdateOrCreate: CockroachDB has no xmax, so
// UpdateOrCreate does not send the one-statement upsert whose RETURNING
// reads it, but UPDATE … RETURNING and then INSERT.
func TestCockroachDB_UpdateOrCreate(t *testing.T) {
	db, fake, _ := fakeCockroach(t)
	_, created, err := racefree.UpdateOrCreate[crdbRow](context.Background(), db, "users",
		racefree.Values{"email": "a@x"}, racefree.Values{"id": 7}, racefree.Options{})
	if err != nil || !created {
		t.Fatalf("UpdateOrCreate: created %v, %v", created, err)
	}
	log := sent(t, fake.Log(), "xmax", "old.", "DO UPDATE")
	if !strings.Contains(log, "UPDATE \"users\" SET") || !strings.Contains(log, "INSERT INTO \"users\"") {
		t.Errorf("want UPDATE then INSERT, sent\n%s", log)
	}
}

// TestCockroachDB_RetriesRestartErrors: CockroachDB's client retry
// protocol is to run the whole transaction again on 40001, at a
// statement or at COMMIT. RunInTx does; an ambiguous result at COMMIT
// (40003) is not retried: the transaction may have committed.
func TestCockroachDB_RetriesRestartErrors(t *testing.T) {
	ctx := context.Background()
	restart := &pgconn.PgError{Code: "40001", Message: "restart transaction: TransactionRetryWithProtoRefreshError: WriteTooOldError"}
	db, _, srv := fakeCockroach(t, fakedb.Reply{Match: "UPDATE counters", Err: restart, ErrTimes: 2})
	calls := 0
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		calls++
		_, err := tx.Exec(ctx, "UPDATE counters SET n = n + 1")
		return err
	})
	if err != nil || calls != 3 || srv.Count("UPDATE counters") != 3 {
		t.Fatalf("RunInTx: %v after %d calls; want success on the third", err, calls)
	}

	sqlDB, _ := fakedb.Open(fakedb.Hooks{
		Server: fakedb.NewServer(fakedb.Reply{Match: "SELECT version()", Columns: []string{"v", "n"},
			Rows: [][]driver.Value{{"CockroachDB CCL v24.1.2 (x86_64-pc-linux-gnu)", "130000"}}}),
		Commit: func(int) error { return &pgconn.PgError{Code: "40003", Message: "result is ambiguous"} },
	})
	defer sqlDB.Close()
	ambiguous, err := racefree.New(ctx, sqlDB, pgdialect.New())
	if err != nil {
		t.Fatal(err)
	}
	calls = 0
	err = racefree.RunInTx(ctx, ambiguous, racefree.TxOptions{}, func(context.Context, *racefree.Tx) error { calls++; return nil })
	var unknown *racefree.CommitUnknownError
	if !errors.As(err, &unknown) || calls != 1 {
		t.Fatalf("ambiguous COMMIT: %v after %d calls; want *CommitUnknownError after 1", err, calls)
	}
}

// TestCockroachDB_LockNamed: without advisory locks, LockNamed takes a
// row lock in racefree_locks, never CockroachDB's pg_advisory_lock stubs.
func TestCockroachDB_LockNamed(t *testing.T) {
	db, fake, _ := fakeCockroach(t)
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return racefree.LockNamed(ctx, tx, "job", racefree.LockOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if log := sent(t, fake.Log(), "pg_advisory"); !strings.Contains(log, "racefree_locks") {
		t.Errorf("want a row in racefree_locks, sent\n%s", log)
	}
}
