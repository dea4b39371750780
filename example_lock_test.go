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

// A queue worker claims the oldest job nobody else is working on: the
// clause makes the SELECT lock the row it reads and skip the rows other
// workers hold (" FOR UPDATE SKIP LOCKED" on PostgreSQL and MySQL 8).
// SQLite needs no clause: the transaction holds the database's write lock,
// which keeps every other worker out until it commits.
func ExampleLockClause() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL);
		INSERT INTO jobs (state) VALUES ('done'), ('queued'), ('queued')`)
	defer cleanup()

	claim := func() (id int64, err error) {
		err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			clause, err := racefree.LockClause(ctx, tx, racefree.RowLockOptions{SkipLocked: true})
			if err != nil {
				return err
			}
			if err := tx.QueryRowContext(ctx, "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"+clause).Scan(&id); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, "UPDATE jobs SET state = 'running' WHERE id = ?", id)
			return err
		})
		return id, err
	}
	for range 3 {
		fmt.Println(claim())
	}
	// Output:
	// 2 <nil>
	// 3 <nil>
	// 0 sql: no rows in result set
}

// "Count, then insert if below the limit" over a whole table: the table's
// write lock keeps every other booking out between the count and the
// insert, so two last seats are never sold three times.
func ExampleLockTable() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE bookings (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
	defer cleanup()

	errSoldOut := errors.New("sold out")
	book := func(name string) error {
		return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := racefree.LockTable(ctx, tx, "bookings", racefree.LockTableWrite, racefree.LockOptions{}); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM bookings").Scan(&n); err != nil {
				return err
			}
			if n >= 2 {
				return errSoldOut
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO bookings (name) VALUES (?)", name)
			return err
		})
	}
	for _, name := range []string{"ada", "alan", "grace"} {
		fmt.Println(name, book(name))
	}
	// Output:
	// ada <nil>
	// alan <nil>
	// grace sold out
}

// Create LockNamed's table at startup, while the pool is fresh and with a
// user that may create tables, rather than on the first lock. It does
// nothing where it is not needed: on PostgreSQL, and on SQLite, where the
// locking transaction creates it itself.
func ExampleCreateLockTable() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	if err := racefree.CreateLockTable(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return racefree.LockNamed(ctx, tx, "nightly-report", racefree.LockOptions{})
	})
	fmt.Println(err)
	// Output: <nil>
}

// A migration runner holds a lock across many transactions. Where the
// engine has no session lock (SQLite; MariaDB Galera and CockroachDB,
// whose locks do not exclude cluster-wide), fall back to a lease, which
// works everywhere.
func ExampleAcquireSessionLock() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	wait := racefree.Wait{Timeout: time.Minute}
	lock, err := racefree.AcquireSessionLock(ctx, db, "migrations", racefree.LockOptions{Wait: wait})
	switch {
	case err == nil:
		defer lock.Release(ctx)
		fmt.Println("session lock", lock.Name())
	case errors.Is(err, racefree.ErrLockUnsupported):
		lease, err := racefree.AcquireLease(ctx, db, "migrations", racefree.LeaseOptions{Wait: wait})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer lease.Release(ctx)
		fmt.Println("lease", lease.Name(), lease.Token())
	default:
		fmt.Println(err)
	}
	// Output: lease migrations 1
}
