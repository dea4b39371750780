package racefree_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
