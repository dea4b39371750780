package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/racefree/racefree"
)

// A read-then-write under a named lock: every worker that takes the lock
// "invoice-number" sees the number the previous one wrote, in whatever
// process or machine it runs.
func ExampleLockNamed() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE seq (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
		INSERT INTO seq VALUES ('invoice', 41)`); err != nil {
		fmt.Println(err)
		return
	}
	var next int
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		// Take the lock before reading what it protects.
		if err := racefree.LockNamed(ctx, tx, "invoice-number", racefree.LockOptions{Wait: racefree.Wait{Timeout: 5 * time.Second}}); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT n FROM seq WHERE name = 'invoice'").Scan(&next); err != nil {
			return err
		}
		next++
		_, err := tx.ExecContext(ctx, "UPDATE seq SET n = ? WHERE name = 'invoice'", next)
		return err
	})
	fmt.Println(next, err)
	// Output: 42 <nil>
}

// Lock the two accounts of a transfer in one canonical order, whatever the
// direction, so that A→B and B→A transfers cannot deadlock.
func ExampleLockRows() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 0)`); err != nil {
		fmt.Println(err)
		return
	}
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		locked, err := racefree.LockRows(ctx, tx, "accounts", "id", []int64{2, 1, 7}, racefree.RowLockOptions{})
		if err != nil {
			return err
		}
		fmt.Println("locked", locked) // sorted; account 7 does not exist
		return nil
	})
	fmt.Println(err)
	// Output:
	// locked [1 2]
	// <nil>
}

// Optimistic concurrency: the second writer read version 1 too, and is
// told that the row changed, not that it is gone.
func ExampleUpdateIfVersion() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, version INTEGER NOT NULL);
		INSERT INTO docs VALUES (1, 'draft', 1)`); err != nil {
		fmt.Println(err)
		return
	}
	// Two editors read version 1 of doc 1; the first to write wins.
	doc := racefree.Values{"id": 1}
	v, err := racefree.UpdateIfVersion(ctx, db, "docs", doc, 1, racefree.Values{"body": "first edit"}, racefree.VersionOptions{})
	fmt.Println(v, err)
	_, err = racefree.UpdateIfVersion(ctx, db, "docs", doc, 1, racefree.Values{"body": "lost edit"}, racefree.VersionOptions{})
	var conflict *racefree.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Println(errors.Is(err, racefree.ErrVersionChanged), errors.Is(err, racefree.ErrRowGone), conflict.Current)
	}
	// Output:
	// 2 <nil>
	// true false 2
}

// A lease with a fencing token: the guarded write checks the token in its
// own transaction, so a holder that stalled past its TTL cannot write
// after a newer holder took over.
func ExampleAcquireLease() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE reports (day TEXT PRIMARY KEY, body TEXT)`); err != nil {
		fmt.Println(err)
		return
	}
	lease, err := racefree.AcquireLease(ctx, db, "nightly-report", racefree.LeaseOptions{TTL: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lease.Release(ctx)
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := lease.Check(ctx, tx); err != nil {
			return err // ErrLeaseLost: someone else holds a newer token
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO reports VALUES ('2026-11-21', 'ok')")
		return err
	})
	fmt.Println(lease.Token(), err)
	// Output: 1 <nil>
}
