package pgxrf_test

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

// These examples need a PostgreSQL server, so they are compiled, not run.

type User struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
	Name  string `db:"name"`
}

// A pgx pool you already have becomes a racefree DB; every verb takes it.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	db, err := pgxrf.New(ctx, pool) // the one line
	if err != nil {
		log.Fatal(err)
	}
	u, created, err := racefree.GetOrCreate[User](ctx, db, "users",
		racefree.Values{"email": "ann@example.com"}, racefree.Values{"name": "Ann"}, racefree.Options{})
	fmt.Println(u.Name, created, err)
}

// sqlc's pgx/v5 queries in racefree's retried transaction: the function
// receives the pgx.Tx, hands it to queries.WithTx, and racefree's row locks
// join the same transaction through WrapTx.
func ExampleRunInTx() {
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
	queries := ledgerpg.New(pool)
	errInsufficient := errors.New("insufficient funds")

	transfer := func(from, to, amount int64) error {
		return pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
			q := queries.WithTx(tx) // sqlc, unchanged
			// Both accounts locked in ascending order: A→B and B→A never deadlock.
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
	fmt.Println(transfer(1, 2, 30))
}

// A transaction you began with pgx yourself: racefree joins it and never
// commits or rolls it back. Passing its options tells racefree the
// isolation level: at REPEATABLE READ a lost race returns an error
// matching racefree.ErrSerialization, and the whole transaction must run
// again (pgxrf.RunInTx does that by itself).
func ExampleWrapTx() {
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
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead}
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx)
	u, created, err := racefree.GetOrCreate[User](ctx, pgxrf.WrapTx(db, tx, &opts), "users",
		racefree.Values{"email": "bob@example.com"}, racefree.Values{"name": "Bob"}, racefree.Options{})
	if err != nil {
		log.Fatal(err) // racefree.IsRetryable(err): begin again
	}
	if _, err := tx.Exec(ctx, "UPDATE users SET name = $1 WHERE id = $2", "Robert", u.ID); err != nil {
		log.Fatal(err)
	}
	fmt.Println(created, tx.Commit(ctx))
}

// A program that holds one *pgx.Conn rather than a pool (a CLI, a
// migration tool) makes a DB over it: every racefree call then runs on that
// connection, one goroutine at a time.
func ExampleNewConn() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	db, err := pgxrf.NewConn(ctx, conn)
	if err != nil {
		log.Fatal(err)
	}
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := racefree.LockNamed(ctx, tx, "migrations", racefree.LockOptions{}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
		return err
	})
	fmt.Println(err)
}
