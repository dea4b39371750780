package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/racefree/racefree"
)

// Create the lease table at startup, with a database user that may create
// tables; AcquireLease would otherwise create it on first use.
func ExampleCreateLeaseTable() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	if err := racefree.CreateLeaseTable(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	var n int
	err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM racefree_leases").Scan(&n)
	fmt.Println(n, err)
	// Output: 0 <nil>
}

// The fence: a holder that stalled while its lease passed to another
// cannot write any more. Here the first holder's lease is released, as if
// it had expired, and a second holder acquires it.
func ExampleLease_Check() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE exports (day TEXT PRIMARY KEY, token INTEGER NOT NULL)")
	defer cleanup()

	export := func(l *racefree.Lease) error {
		return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := l.Check(ctx, tx); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO exports VALUES ('2026-11-21', ?) ON CONFLICT (day) DO UPDATE SET token = excluded.token", l.Token())
			return err
		})
	}
	first, err := racefree.AcquireLease(ctx, db, "export", racefree.LeaseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	first.Release(ctx) // a GC pause past the TTL, say
	second, err := racefree.AcquireLease(ctx, db, "export", racefree.LeaseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer second.Release(ctx)
	fmt.Println("second:", export(second))
	fmt.Println("first:", errors.Is(export(first), racefree.ErrLeaseLost))
	// Output:
	// second: <nil>
	// first: true
}

// Do keeps the lease renewed while fn runs and hands fn the fencing token
// to write with the work it guards.
func ExampleLease_Do() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE reports (day TEXT PRIMARY KEY, token INTEGER NOT NULL)")
	defer cleanup()

	lease, err := racefree.AcquireLease(ctx, db, "nightly-report", racefree.LeaseOptions{TTL: 30 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lease.Release(ctx)
	err = lease.Do(ctx, func(ctx context.Context, token int64) error {
		// ctx is canceled, with a cause matching ErrLeaseLost, if the lease
		// is lost while the report is built.
		_, err := db.SQL().ExecContext(ctx, "INSERT INTO reports VALUES ('2026-11-21', ?)", token)
		return err
	})
	fmt.Println(err)
	// Output: <nil>
}

// Name returns the name the lease was acquired under, for logs.
func ExampleLease_Name() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	lease, err := racefree.AcquireLease(ctx, db, "billing-run", racefree.LeaseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lease.Release(ctx)
	fmt.Printf("holding %q\n", lease.Name())
	// Output: holding "billing-run"
}

// Release frees the lease at once, so that the next holder need not wait
// for it to expire; the next acquisition gets a newer token.
func ExampleLease_Release() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	opts := racefree.LeaseOptions{TTL: time.Hour, Wait: racefree.Wait{Try: true}}
	first, err := racefree.AcquireLease(ctx, db, "billing-run", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = racefree.AcquireLease(ctx, db, "billing-run", opts)
	fmt.Println("while held:", errors.Is(err, racefree.ErrLockNotAcquired))
	fmt.Println(first.Release(ctx))
	second, err := racefree.AcquireLease(ctx, db, "billing-run", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer second.Release(ctx)
	fmt.Println("after release:", second.Token())
	// Output:
	// while held: true
	// <nil>
	// after release: 2
}

// Renew extends a lease by its TTL. Renew well within the TTL when you keep
// a lease by hand between steps of work; Do does it for you.
func ExampleLease_Renew() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	lease, err := racefree.AcquireLease(ctx, db, "reindex", racefree.LeaseOptions{TTL: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lease.Release(ctx)
	for _, table := range []string{"users", "orders"} {
		if err := lease.Renew(ctx); err != nil {
			fmt.Println(err) // racefree.ErrLeaseLost: stop, another worker has it
			return
		}
		fmt.Println("reindex", table)
	}
	// Output:
	// reindex users
	// reindex orders
}

// TTL returns how long the lease lasts without renewal: DefaultLeaseTTL
// unless LeaseOptions set one.
func ExampleLease_TTL() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	lease, err := racefree.AcquireLease(ctx, db, "reindex", racefree.LeaseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lease.Release(ctx)
	fmt.Println(lease.TTL(), "renew every", lease.TTL()/3)
	// Output: 30s renew every 10s
}

// The fencing token grows with every acquisition. A resource that stores
// the token of the last write can refuse a write that carries a smaller
// one: that writer's lease has passed to someone else.
func ExampleLease_Token() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE files (name TEXT PRIMARY KEY, body TEXT, token INTEGER NOT NULL);
		INSERT INTO files VALUES ('report.csv', '', 0)`)
	defer cleanup()

	write := func(token int64, body string) (bool, error) {
		res, err := db.SQL().ExecContext(ctx, "UPDATE files SET body = ?, token = ? WHERE name = 'report.csv' AND token <= ?", body, token, token)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n == 1, err
	}
	var tokens []int64
	for range 2 {
		lease, err := racefree.AcquireLease(ctx, db, "report.csv", racefree.LeaseOptions{})
		if err != nil {
			fmt.Println(err)
			return
		}
		tokens = append(tokens, lease.Token())
		lease.Release(ctx)
	}
	fmt.Println(tokens)
	fmt.Println(write(tokens[1], "new"))
	fmt.Println(write(tokens[0], "stale")) // refused: an older holder
	// Output:
	// [1 2]
	// true <nil>
	// false <nil>
}
