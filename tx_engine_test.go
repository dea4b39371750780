package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// TestRunInTx_Engines runs the transaction runner on every engine: commit,
// rollback on error and on panic, savepoints, pinned connections and
// callers' own transactions, and retries forced with real conflicts
// (deadlocks, serialization failures, TiDB's optimistic write conflicts,
// SQLITE_BUSY), lock timeouts that are not retried, and commits whose
// outcome is unknown. These were the runner's half of the old conformance
// suite; what a dialect decides is checked by dialect/dialecttest. It
// starts a watchdog, so the engine lanes run it with the race suite.
func TestRunInTx_Engines(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 3*time.Minute)
		t.Run("Commits", func(t *testing.T) { testRunInTxCommits(t, e) })
		t.Run("RollsBackOnError", func(t *testing.T) { testRunInTxRollsBack(t, e) })
		t.Run("RollsBackOnPanic", func(t *testing.T) { testRunInTxPanic(t, e) })
		t.Run("NestedSavepoint", func(t *testing.T) { testRunInTxNested(t, e) })
		t.Run("KeptSavepointLeavesCallersAlone", func(t *testing.T) { testRunInTxKeptSavepoint(t, e) })
		t.Run("OnConnAndWrappedTx", func(t *testing.T) { testRunInTxConnAndWrapped(t, e) })
		t.Run("LockTimeoutNotRetried", func(t *testing.T) { testRunInTxLockTimeout(t, e) })
		t.Run("RetryDeadlock", func(t *testing.T) { testRetryDeadlock(t, e) })
		t.Run("RetrySerializationFailure", func(t *testing.T) { testRetrySerialization(t, e) })
		t.Run("RetryWriteConflict", func(t *testing.T) { testRetryWriteConflict(t, e) })
		t.Run("RetryBusy", func(t *testing.T) { testRetryBusy(t, e) })
		t.Run("CommitOutcomeUnknown", func(t *testing.T) { testCommitUnknown(t, e) })
	})
}

var errTxBody = errors.New("the body failed")

func txCounterTable(t *testing.T, db *racefree.DB, rows ...int) string {
	t.Helper()
	tbl := testdb.CreateTable(t, db, "ctr", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	for _, id := range rows {
		testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES ("+strconv.Itoa(id)+", 0)")
	}
	return tbl
}

func txRows(t *testing.T, db *racefree.DB, tbl string) int64 {
	t.Helper()
	return testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+tbl)
}

func txInsert(ctx context.Context, tx *racefree.Tx, tbl string, id int) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO "+tbl+" (id, n) VALUES ("+strconv.Itoa(id)+", 0)")
	return err
}

func testRunInTxCommits(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := txCounterTable(t, db)
	calls := 0
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		calls++
		return txInsert(ctx, tx, tbl, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || txRows(t, db, tbl) != 1 {
		t.Fatalf("calls = %d, rows = %d; want 1 and 1", calls, txRows(t, db, tbl))
	}
	for _, level := range []sql.IsolationLevel{sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable} {
		if level == sql.LevelSerializable && txIsTiDB(db.Dialect()) {
			testTiDBRefusesSerializable(t, db)
			continue
		}
		err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{Isolation: level}, func(ctx context.Context, tx *racefree.Tx) error {
			if got, known := tx.Isolation(); got != level || !known {
				t.Errorf("tx.Isolation() = %v, %v; want %v, true", got, known, level)
			}
			_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 1")
			return err
		})
		if err != nil {
			t.Fatalf("isolation %v: %v", level, err)
		}
	}
	err = racefree.RunInTx(context.Background(), db, racefree.TxOptions{ReadOnly: true}, func(ctx context.Context, tx *racefree.Tx) error {
		return tx.QueryRowContext(ctx, "SELECT n FROM "+tbl).Scan(new(int))
	})
	switch {
	case !db.Dialect().Features().Has(dialect.ReadOnlyTx):
		// Refused before anything is sent, rather than run read-write.
		if !errors.Is(err, racefree.ErrUnsupported) {
			t.Fatalf("read-only transaction on %s: err = %v, want ErrUnsupported", db.Dialect().Server(), err)
		}
	case err != nil:
		t.Fatalf("read-only transaction: %v", err)
	}
}

func testRunInTxRollsBack(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := txCounterTable(t, db)
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := txInsert(ctx, tx, tbl, 1); err != nil {
			return err
		}
		return errTxBody
	})
	if !errors.Is(err, errTxBody) {
		t.Fatalf("RunInTx = %v, want the body's error", err)
	}
	if n := txRows(t, db, tbl); n != 0 {
		t.Fatalf("rows after rollback = %d, want 0", n)
	}
	// A unique violation from the body keeps its class and is not retried.
	calls := 0
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES (7, 0)")
	err = racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		calls++
		return txInsert(ctx, tx, tbl, 7)
	})
	if !errors.Is(err, racefree.ErrUniqueViolation) || calls != 1 {
		t.Fatalf("duplicate insert: err %v, calls %d; want ErrUniqueViolation after 1 call", err, calls)
	}
	// Bad input is an error, not a panic.
	if err := racefree.RunInTx(context.Background(), nil, racefree.TxOptions{}, func(context.Context, *racefree.Tx) error { return nil }); err == nil {
		t.Fatal("nil executor: no error")
	}
	var nilDB *racefree.DB
	if err := racefree.RunInTx(context.Background(), nilDB, racefree.TxOptions{}, func(context.Context, *racefree.Tx) error { return nil }); err == nil {
		t.Fatal("nil *DB: no error")
	}
	if err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, nil); err == nil {
		t.Fatal("nil function: no error")
	}
}

func testRunInTxPanic(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := txCounterTable(t, db)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the body's panic", p)
			}
		}()
		_ = racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := txInsert(ctx, tx, tbl, 1); err != nil {
				t.Fatal(err)
			}
			panic("boom")
		})
	}()
	if n := txRows(t, db, tbl); n != 0 {
		t.Fatalf("rows after panic = %d, want 0", n)
	}
	// The connection went back to the pool clean: the next transaction works.
	if err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return txInsert(ctx, tx, tbl, 2)
	}); err != nil {
		t.Fatal(err)
	}
}

func testRunInTxNested(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := txCounterTable(t, db)
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES (5, 0)")
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := txInsert(ctx, tx, tbl, 1); err != nil {
			return err
		}
		// A failing nested transaction rolls back to its savepoint only.
		err := racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := txInsert(ctx, tx, tbl, 2); err != nil {
				return err
			}
			return txInsert(ctx, tx, tbl, 5) // duplicate: on PostgreSQL this aborts the transaction
		})
		if !errors.Is(err, racefree.ErrUniqueViolation) {
			t.Errorf("nested duplicate: %v, want ErrUniqueViolation", err)
		}
		// The outer transaction goes on, even on PostgreSQL.
		if err := racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			return txInsert(ctx, tx, tbl, 3)
		}); err != nil {
			return err
		}
		// A nested transaction cannot change the isolation level.
		if err := racefree.RunInTx(ctx, tx, racefree.TxOptions{Isolation: sql.LevelSerializable}, func(context.Context, *racefree.Tx) error {
			t.Error("nested body with another isolation level ran")
			return nil
		}); err == nil {
			t.Error("nested RunInTx with another isolation level: no error")
		}
		return txInsert(ctx, tx, tbl, 4)
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	rows, err := db.SQL().Query("SELECT id FROM " + tbl + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if got, want := len(ids), 4; got != want || ids[0] != 1 || ids[1] != 3 || ids[2] != 4 || ids[3] != 5 {
		t.Fatalf("ids = %v, want [1 3 4 5]", ids)
	}
}

// testRunInTxKeptSavepoint checks that the savepoint RunInTx leaves open
// for COMMIT (a transaction's first) disturbs none of the caller's: one
// taken after it nests in it and is rolled back to and released as usual,
// and a ROLLBACK TO one taken before it discards it with its writes.
func testRunInTxKeptSavepoint(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := txCounterTable(t, db)
	nested := func(ctx context.Context, tx *racefree.Tx, id int) error {
		return racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			return txInsert(ctx, tx, tbl, id)
		})
	}
	exec := func(ctx context.Context, tx *racefree.Tx, stmts ...string) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	}
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := exec(ctx, tx, "SAVEPOINT early"); err != nil {
			return err
		}
		if err := nested(ctx, tx, 1); err != nil { // the savepoint left open
			return err
		}
		if err := exec(ctx, tx, "SAVEPOINT mine"); err != nil {
			return err
		}
		if err := txInsert(ctx, tx, tbl, 2); err != nil {
			return err
		}
		if err := exec(ctx, tx, "ROLLBACK TO SAVEPOINT mine", "RELEASE SAVEPOINT mine"); err != nil {
			return err
		}
		if err := nested(ctx, tx, 3); err != nil { // released as usual
			return err
		}
		if err := exec(ctx, tx, "ROLLBACK TO SAVEPOINT early"); err != nil { // discards 1 and 3
			return err
		}
		return nested(ctx, tx, 4)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := nested(ctx, tx, 5); err != nil {
			return err
		}
		return exec(ctx, tx, "SAVEPOINT mine", "RELEASE SAVEPOINT mine")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+tbl+" WHERE id IN (4, 5)"); got != 2 || txRows(t, db, tbl) != 2 {
		t.Fatalf("rows: %d of ids 4 and 5, %d in all; want 2 and 2", got, txRows(t, db, tbl))
	}
}

// testRunInTxConnAndWrapped runs on a pinned connection and inside a
// caller's own transaction, which racefree must never commit.
func testRunInTxConnAndWrapped(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := txCounterTable(t, db)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := racefree.RunInTx(ctx, conn, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return txInsert(ctx, tx, tbl, 1)
	}); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	sqlTx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := db.WrapTx(sqlTx, nil)
	if err := racefree.RunInTx(ctx, wrapped, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return txInsert(ctx, tx, tbl, 2)
	}); err != nil {
		t.Fatal(err)
	}
	if err := sqlTx.Rollback(); err != nil {
		t.Fatalf("caller's transaction was ended by racefree: %v", err)
	}
	if n := txRows(t, db, tbl); n != 1 {
		t.Fatalf("rows = %d, want 1 (the caller rolled back its own transaction)", n)
	}
}

// txIsTiDB reports whether d was detected on TiDB, which speaks the MySQL
// protocol with a transaction model of its own: snapshot isolation with
// no SERIALIZABLE, pessimistic row locks by default, optimistic write
// conflicts (9007) at COMMIT on request.
func txIsTiDB(d dialect.Dialect) bool { return strings.HasPrefix(d.Server(), "TiDB") }

// testTiDBFeatures checks on the server the capabilities the dialect
// leaves out for TiDB: each would be accepted by a MySQL server and each
// fails or silently does nothing on TiDB.
func testTiDBFeatures(t *testing.T, e testdb.Engine, d dialect.Dialect) {
	f := d.Features()
	if f.Has(dialect.ForShare) || f.Has(dialect.SkipLocked) || f.Has(dialect.TableLocks) || !f.Has(dialect.NoWait) {
		t.Errorf("%s: want NOWAIT and no FOR SHARE, SKIP LOCKED or table locks; features %b", d.Server(), f)
	}
	db := e.Open(t)
	tbl := txCounterTable(t, db, 1, 2)
	ctx := context.Background()

	holder, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "SELECT id FROM "+tbl+" WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	other, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, "SELECT id FROM "+tbl+" LOCK IN SHARE MODE"); err == nil {
		t.Errorf("%s: LOCK IN SHARE MODE succeeded: the dialect should offer ForShare", d.Server())
	}
	var ids []int
	rows, err := other.QueryContext(ctx, "SELECT id FROM "+tbl+" ORDER BY id FOR UPDATE SKIP LOCKED")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ids) == 1 && ids[0] == 2 {
		t.Errorf("%s: SKIP LOCKED skipped the locked row: the dialect should offer SkipLocked", d.Server())
	}
	t.Logf("%s: SKIP LOCKED returned rows %v while row 1 was locked", d.Server(), ids)
}

// testTiDBRefusesSerializable checks that asking TiDB for SERIALIZABLE
// fails, before the body runs, rather than running at a weaker level.
func testTiDBRefusesSerializable(t *testing.T, db *racefree.DB) {
	ran := false
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{Isolation: sql.LevelSerializable}, func(context.Context, *racefree.Tx) error {
		ran = true
		return nil
	})
	if !errors.Is(err, racefree.ErrUnsupported) || ran {
		t.Fatalf("%s: SERIALIZABLE transaction ran or failed otherwise (err %v): TiDB should refuse it", db.Dialect().Server(), err)
	}
	t.Logf("%s refuses SERIALIZABLE: %v", db.Dialect().Server(), err)
}

// txSessionID returns the server's id for the session q runs on.
func txSessionID(tb testing.TB, db *racefree.DB, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int64 {
	tb.Helper()
	idQuery := "SELECT pg_backend_pid()"
	if db.Dialect().Name() == "mysql" {
		idQuery = "SELECT CONNECTION_ID()"
	}
	var id int64
	if err := q.QueryRowContext(context.Background(), idQuery).Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return id
}

// txKillSession terminates a server session from another connection and
// gives the server a moment to close its socket.
func txKillSession(tb testing.TB, db *racefree.DB, id int64) {
	tb.Helper()
	killQuery := "SELECT pg_terminate_backend($1)"
	if db.Dialect().Name() == "mysql" {
		killQuery = "KILL ?"
	}
	if _, err := db.SQL().ExecContext(context.Background(), killQuery, id); err != nil {
		tb.Fatalf("kill session %d: %v", id, err)
	}
	time.Sleep(100 * time.Millisecond)
}

func txItoa(i int) string { return strconv.Itoa(i) }
