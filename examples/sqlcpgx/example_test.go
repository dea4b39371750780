package sqlcpgxexample_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/examples/sqlcpgx/ledgerpg"
	"github.com/racefree/racefree/pgxrf"
)

// These examples need PostgreSQL (schema.sql applied), so they are
// compiled, not run; pgxrf's tests run the same queries against the server.

var errInsufficient = errors.New("insufficient funds")

// Transfers written with sqlc's pgx/v5 queries, run by pgxrf.RunInTx: both
// accounts locked in ascending order (no deadlock between A→B and B→A),
// the balance checked inside the transaction, retries on conflicts.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	db, err := pgxrf.New(ctx, pool)
	if err != nil {
		log.Fatal(err)
	}
	queries := ledgerpg.New(pool) // outside a transaction, sqlc's queries run on the pool

	transfer := func(from, to, amount int64) error {
		return pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
			q := queries.WithTx(tx) // the one line: sqlc's queries in racefree's transaction
			if _, err := racefree.LockRows(ctx, pgxrf.WrapTx(db, tx, nil), "accounts", "id", []int64{from, to}, racefree.RowLockOptions{}); err != nil {
				return err
			}
			src, err := q.GetAccount(ctx, from)
			if err != nil {
				return err
			}
			if src.Balance < amount {
				return errInsufficient
			}
			if err := q.AddToBalance(ctx, ledgerpg.AddToBalanceParams{Amount: -amount, ID: from}); err != nil {
				return err
			}
			return q.AddToBalance(ctx, ledgerpg.AddToBalanceParams{Amount: amount, ID: to})
		})
	}
	if err := transfer(1, 2, 7); err != nil && !errors.Is(err, errInsufficient) {
		log.Fatal(err)
	}
	total, err := queries.TotalBalance(ctx)
	fmt.Println("total:", total, err)
}

// A transaction you begin yourself with pgx: sqlc's queries and racefree's
// verbs share it (pgxrf.WrapTx never commits or rolls it back).
func Example_ownTransaction() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	db, err := pgxrf.New(ctx, pool)
	if err != nil {
		log.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx)
	q := ledgerpg.New(tx)
	rtx := pgxrf.WrapTx(db, tx, &pgx.TxOptions{}) // the one line: racefree joins your transaction

	type account struct {
		ID      int64  `db:"id"`
		Owner   string `db:"owner"`
		Balance int64  `db:"balance"`
	}
	carol, created, err := racefree.GetOrCreate[account](ctx, rtx, "accounts",
		racefree.Values{"id": 3}, racefree.Values{"owner": "carol", "balance": 0}, racefree.Options{})
	fmt.Println(carol.Owner, created, err)
	if err := q.AddToBalance(ctx, ledgerpg.AddToBalanceParams{Amount: 50, ID: carol.ID}); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
}
