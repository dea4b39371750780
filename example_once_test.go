package racefree_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
)

// RunOnce applies a payment once per idempotency key: the second call with
// the same key, a client's retry say, returns the first call's result
// without charging again.
func ExampleRunOnce() {
	dir, _ := os.MkdirTemp("", "racefree-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(dir, "shop.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE payments (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)"); err != nil {
		panic(err)
	}
	pay := func(ctx context.Context, tx *racefree.Tx) (int64, error) {
		res, err := tx.Exec(ctx, "INSERT INTO payments (amount) VALUES (250)")
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		return n * 250, err
	}
	for range 2 {
		charged, ran, err := racefree.RunOnce(ctx, db, "order-1042", racefree.OnceOptions{}, pay)
		fmt.Println(charged, ran, err)
	}
	var payments int
	db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM payments").Scan(&payments)
	fmt.Println("payments:", payments)
	// Output:
	// 250 true <nil>
	// 250 false <nil>
	// payments: 1
}

// Create RunOnce's key table at startup, here under a name of the
// program's own, and name it in every call's OnceOptions.
func ExampleCreateOnceTable() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE payments (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
	defer cleanup()

	if err := racefree.CreateOnceTable(ctx, db, "payment_keys"); err != nil {
		fmt.Println(err)
		return
	}
	opts := racefree.OnceOptions{Table: "payment_keys"}
	_, ran, err := racefree.RunOnce(ctx, db, "order-1042", opts, func(ctx context.Context, tx *racefree.Tx) (struct{}, error) {
		_, err := tx.Exec(ctx, "INSERT INTO payments (amount) VALUES (250)")
		return struct{}{}, err
	})
	fmt.Println(ran, err)
	// Output: true <nil>
}

// RunOnce deletes expired keys on its own as it writes new ones; SweepOnce
// empties the table on demand, for a program that has stopped writing keys.
// Here two keys were kept for a millisecond, and one for a day.
func ExampleSweepOnce() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	noop := func(ctx context.Context, tx *racefree.Tx) (int, error) { return 0, nil }
	for _, key := range []string{"order-1", "order-2"} {
		if _, _, err := racefree.RunOnce(ctx, db, key, racefree.OnceOptions{TTL: time.Millisecond}, noop); err != nil {
			fmt.Println(err)
			return
		}
	}
	if _, _, err := racefree.RunOnce(ctx, db, "order-3", racefree.OnceOptions{}, noop); err != nil {
		fmt.Println(err)
		return
	}
	time.Sleep(10 * time.Millisecond)
	fmt.Println(racefree.SweepOnce(ctx, db, ""))
	// Output: 2 <nil>
}
