package dialecttest

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

var errBody = errors.New("the body failed")

func counterTable(t *testing.T, db *racefree.DB, rows ...int) string {
	t.Helper()
	tbl := testdb.CreateTable(t, db, "ctr", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	for _, id := range rows {
		testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES ("+strconv.Itoa(id)+", 0)")
	}
	return tbl
}

func count(t *testing.T, db *racefree.DB, tbl string) int64 {
	t.Helper()
	return testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+tbl)
}

func insert(ctx context.Context, tx *racefree.Tx, tbl string, id int) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO "+tbl+" (id, n) VALUES ("+strconv.Itoa(id)+", 0)")
	return err
}

func testRunInTxCommits(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := counterTable(t, db)
	calls := 0
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		calls++
		return insert(ctx, tx, tbl, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || count(t, db, tbl) != 1 {
		t.Fatalf("calls = %d, rows = %d; want 1 and 1", calls, count(t, db, tbl))
	}
	for _, level := range []sql.IsolationLevel{sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable} {
		if level == sql.LevelSerializable && isTiDB(db.Dialect()) {
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
	if err != nil {
		t.Fatalf("read-only transaction: %v", err)
	}
}

func testRunInTxRollsBack(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := counterTable(t, db)
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := insert(ctx, tx, tbl, 1); err != nil {
			return err
		}
		return errBody
	})
	if !errors.Is(err, errBody) {
		t.Fatalf("RunInTx = %v, want the body's error", err)
	}
	if n := count(t, db, tbl); n != 0 {
		t.Fatalf("rows after rollback = %d, want 0", n)
	}
	// A unique violation from the body keeps its class and is not retried.
	calls := 0
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES (7, 0)")
	err = racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		calls++
		return insert(ctx, tx, tbl, 7)
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
	tbl := counterTable(t, db)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the body's panic", p)
			}
		}()
		_ = racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := insert(ctx, tx, tbl, 1); err != nil {
				t.Fatal(err)
			}
			panic("boom")
		})
	}()
	if n := count(t, db, tbl); n != 0 {
		t.Fatalf("rows after panic = %d, want 0", n)
	}
	// The connection went back to the pool clean: the next transaction works.
	if err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return insert(ctx, tx, tbl, 2)
	}); err != nil {
		t.Fatal(err)
	}
}

func testRunInTxNested(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := counterTable(t, db)
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES (5, 0)")
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := insert(ctx, tx, tbl, 1); err != nil {
			return err
		}
		// A failing nested transaction rolls back to its savepoint only.
		err := racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := insert(ctx, tx, tbl, 2); err != nil {
				return err
			}
			return insert(ctx, tx, tbl, 5) // duplicate: on PostgreSQL this aborts the transaction
		})
		if !errors.Is(err, racefree.ErrUniqueViolation) {
			t.Errorf("nested duplicate: %v, want ErrUniqueViolation", err)
		}
		// The outer transaction goes on, even on PostgreSQL.
		if err := racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			return insert(ctx, tx, tbl, 3)
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
		return insert(ctx, tx, tbl, 4)
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

// testRunInTxConnAndWrapped runs on a pinned connection and inside a
// caller's own transaction, which racefree must never commit.
func testRunInTxConnAndWrapped(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := counterTable(t, db)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := racefree.RunInTx(ctx, conn, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return insert(ctx, tx, tbl, 1)
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
		return insert(ctx, tx, tbl, 2)
	}); err != nil {
		t.Fatal(err)
	}
	if err := sqlTx.Rollback(); err != nil {
		t.Fatalf("caller's transaction was ended by racefree: %v", err)
	}
	if n := count(t, db, tbl); n != 1 {
		t.Fatalf("rows = %d, want 1 (the caller rolled back its own transaction)", n)
	}
}
