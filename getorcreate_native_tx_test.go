package racefree_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// Native reads on a pinned connection: in the transactions RunInTx begins
// (on the pool or on a *Conn) and on a *Conn, the statement runs on the
// connection database/sql holds for them, inside the transaction. These
// tests hold them to database/sql's answer and to the transaction's
// semantics: what it rolls back is gone, and its snapshot is what it reads.

type nativeTxRow struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	N    *int64 `db:"n"`
}

// The same values as database/sql in every pinned place, each read native.
func TestNativeRead_PinnedSameAsDatabaseSQL(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_pinned", "id BIGINT PRIMARY KEY, name TEXT NOT NULL DEFAULT 'n', n BIGINT")
	testdb.Exec(t, db, "INSERT INTO "+table+" VALUES (1, 'a', 7), (2, 'b', NULL)")
	key := func(id int64) racefree.Values { return racefree.Values{"id": id} }

	for _, id := range []int64{1, 2} {
		want, _, err := inTx(ctx, db, func(ctx context.Context, tx *racefree.Tx) (nativeTxRow, bool, error) {
			return racefree.GetOrCreate[nativeTxRow](ctx, tx, table, key(id), nil, racefree.Options{})
		})
		must(t, err)
		reads := countNativeReads(t)
		var got [3]nativeTxRow
		must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) (err error) {
			got[0], _, err = racefree.GetOrCreate[nativeTxRow](ctx, tx, table, key(id), nil, racefree.Options{})
			return err
		}))
		conn, err := db.Conn(ctx)
		must(t, err)
		got[1], _, err = racefree.GetOrCreate[nativeTxRow](ctx, conn, table, key(id), nil, racefree.Options{})
		must(t, err)
		must(t, racefree.RunInTx(ctx, conn, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx *racefree.Tx) (err error) {
			got[2], _, err = racefree.GetOrCreate[nativeTxRow](ctx, tx, table, key(id), nil, racefree.Options{})
			return err
		}))
		must(t, conn.Close())
		for i, g := range got {
			if !reflect.DeepEqual(g, want) {
				t.Errorf("row %d, place %d: native %+v, database/sql %+v", id, i, g, want)
			}
		}
		if native, fallback, _ := reads.get(); native != 3 || fallback != 0 {
			t.Errorf("row %d: native reads %d, fallbacks %d; want 3 and 0", id, native, fallback)
		}
	}
}

// A row a native INSERT … RETURNING made inside a transaction that then
// rolls back is gone, and a native read inside REPEATABLE READ sees the
// transaction's snapshot, not a newer commit: the statements ran inside
// the transaction.
func TestNativeRead_PinnedRunsInsideTheTransaction(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_inside", "id BIGINT PRIMARY KEY, name TEXT NOT NULL DEFAULT 'n', n BIGINT")
	reads := countNativeReads(t)

	errUndo := errors.New("undo")
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		_, created, err := racefree.CreateOrGet[nativeTxRow](ctx, tx, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
		if err != nil {
			return err
		}
		if !created {
			t.Error("row 1 not created")
		}
		return errUndo
	})
	if !errors.Is(err, errUndo) {
		t.Fatalf("err = %v, want the function's", err)
	}
	if native, _, _ := reads.get(); native != 1 {
		t.Errorf("%d native statements, want the INSERT's 1", native)
	}
	var rows int
	must(t, db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&rows))
	if rows != 0 {
		t.Fatalf("%d rows after the rollback, want 0", rows)
	}

	testdb.Exec(t, db, "INSERT INTO "+table+" (id, name) VALUES (2, 'before')")
	must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx *racefree.Tx) error {
		first, _, err := racefree.GetOrCreate[nativeTxRow](ctx, tx, table, racefree.Values{"id": int64(2)}, nil, racefree.Options{})
		if err != nil {
			return err
		}
		testdb.Exec(t, db, "UPDATE "+table+" SET name = 'after' WHERE id = 2") // another session commits
		again, _, err := racefree.GetOrCreate[nativeTxRow](ctx, tx, table, racefree.Values{"id": int64(2)}, nil, racefree.Options{})
		if err != nil {
			return err
		}
		if first.Name != "before" || again.Name != "before" {
			t.Errorf("names %q then %q, want the snapshot's %q twice", first.Name, again.Name, "before")
		}
		return nil
	}))
}

// A *Tx used after its RunInTx returned gets database/sql's error, not one
// about the connection behind it.
func TestNativeRead_PinnedAfterTheTransaction(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_after", "id BIGINT PRIMARY KEY, name TEXT, n BIGINT")
	var kept *racefree.Tx
	must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		kept = tx
		return nil
	}))
	_, _, err := racefree.GetOrCreate[nativeTxRow](ctx, kept, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
	if !errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("err = %v, want sql.ErrTxDone", err)
	}
}

// The session of a transaction ended by the server under a native read,
// or before it (a statement of fn failed on it, and fn went on): the read
// fails without hanging — Raw must not close the *sql.Conn under its open
// transaction —, RunInTx runs the transaction again on another
// connection, and it commits.
func TestNativeRead_PinnedSessionKilled(t *testing.T) {
	for _, before := range []bool{false, true} {
		name := "under the read"
		if before {
			name = "before the read"
		}
		t.Run(name, func(t *testing.T) { nativePinnedSessionKilled(t, before) })
	}
}

func nativePinnedSessionKilled(t *testing.T, before bool) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // watchdog
	defer cancel()
	table := testdb.CreateTable(t, db, "native_killed", "id BIGINT PRIMARY KEY, name TEXT NOT NULL DEFAULT 'n', n BIGINT")
	// Read the table's shape now: in the transaction GetOrCreate's first
	// statement is then its SELECT.
	_, _, err := racefree.GetOrCreate[nativeTxRow](ctx, db, table, racefree.Values{"id": int64(0)}, nil, racefree.Options{})
	must(t, err)
	var attempts, failedReads atomic.Int32
	t.Cleanup(racefree.SetNativeReadHook(func(err error) {
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			failedReads.Add(1)
		}
	}))
	done := make(chan error, 1)
	go func() {
		done <- racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if attempts.Add(1) == 1 {
				txKillSession(t, db, txSessionID(t, db, tx.SQL()))
				if before {
					// Fails, and pgx closes its connection; fn goes on.
					_, _ = tx.Exec(ctx, "SELECT 1")
				}
			}
			// GetOrCreate's first statement is its native SELECT.
			_, _, err := racefree.GetOrCreate[nativeTxRow](ctx, tx, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
			return err
		})
	}()
	select {
	case err := <-done:
		must(t, err)
	case <-ctx.Done():
		t.Fatal("RunInTx hung after its session was killed")
	}
	if n := attempts.Load(); n != 2 {
		t.Errorf("%d attempts, want 2 (the killed one, then one that commits)", n)
	}
	if n := failedReads.Load(); n != 1 {
		t.Errorf("%d native reads failed, want the killed session's 1", n)
	}
	var rows int
	must(t, db.SQL().QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&rows))
	if rows != 2 {
		t.Errorf("%d rows, want 2", rows)
	}
}

// A native read in a transaction, cut off by its context while it waits
// for a lock: RunInTx returns the context's error, and the pool stays
// usable — the connection pgx closed on the cancel is not handed out
// again.
func TestNativeRead_PinnedCanceledWhileWaiting(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_tx_cancel", "id BIGINT PRIMARY KEY, name TEXT NOT NULL DEFAULT 'n', n BIGINT")
	testdb.Exec(t, db, "INSERT INTO "+table+" (id, name) VALUES (1, 'a')")
	db.SQL().SetMaxOpenConns(2)
	reads := countNativeReads(t)

	// Another session holds the table locked: the read waits on it.
	locker := lockTableElsewhere(t, db, table)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- racefree.RunInTx(short, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			_, _, err := racefree.GetOrCreate[nativeTxRow](ctx, tx, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
			return err
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunInTx hung after its context ended") // watchdog
	}
	must(t, locker.Rollback())

	for range 10 {
		must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			got, _, err := racefree.GetOrCreate[nativeTxRow](ctx, tx, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
			if err == nil && got.Name != "a" {
				t.Errorf("name = %q", got.Name)
			}
			return err
		}))
	}
	if native, _, _ := reads.get(); native < 10 {
		t.Errorf("%d reads went natively, want the 10 after the cancel", native)
	}
}

// A read while rows of the same transaction are still open: pgx refuses
// the busy connection before sending, the read is left to database/sql,
// and the error is database/sql's for that connection (pgx's "conn busy",
// or database/sql's "bad connection" where pgx calls the refusal safe to
// retry) — an error, not a hang, and the transaction rolls back.
func TestNativeRead_PinnedConnectionBusy(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // watchdog
	defer cancel()
	table := testdb.CreateTable(t, db, "native_busy", "id BIGINT PRIMARY KEY, name TEXT NOT NULL DEFAULT 'n', n BIGINT")
	testdb.Exec(t, db, "INSERT INTO "+table+" (id) VALUES (1), (2)")
	// Read the table's shape now, so that the read below is the hit's.
	_, _, err := racefree.GetOrCreate[nativeTxRow](ctx, db, table, racefree.Values{"id": int64(2)}, nil, racefree.Options{})
	must(t, err)
	reads := countNativeReads(t)
	var got error
	errDone := errors.New("done")
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		rows, err := tx.SQL().QueryContext(ctx, "SELECT id FROM "+table)
		if err != nil {
			return err
		}
		defer rows.Close()
		_, _, got = racefree.GetOrCreate[nativeTxRow](ctx, tx, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
		return errDone
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("RunInTx: %v", err)
	}
	if got == nil || !strings.Contains(got.Error(), "conn busy") && !errors.Is(got, driver.ErrBadConn) {
		t.Errorf("err = %v, want database/sql's error for a busy connection", got)
	}
	if _, fallback, _ := reads.get(); fallback != 1 {
		t.Errorf("%d native reads left to database/sql, want the busy one", fallback)
	}
	// The pool is fine afterwards.
	_, _, err = racefree.GetOrCreate[nativeTxRow](ctx, db, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
	must(t, err)
}
