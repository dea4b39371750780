package bench

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

func init() {
	Register(&Case{
		Name: "lock", Title: "named lock, acquire and release",
		Racefree: "RunInTx + LockNamed (released by COMMIT)", Raw: "the engine's own named lock, taken and released",
		Goroutines: 1, Setup: setupLock, Ops: lockOps,
	})
}

// setupLock creates the table LockNamed keeps its locks in where it needs
// one, so that the first measured call does not pay for it.
func setupLock(ctx context.Context, env Env) error {
	return racefree.CreateLockTable(ctx, env.DB)
}

// lockOps pairs LockNamed with what a programmer uses on each engine
// without racefree: a transaction-scoped advisory lock on PostgreSQL,
// GET_LOCK and RELEASE_LOCK on one connection on MySQL/MariaDB, and on
// SQLite an IMMEDIATE transaction, whose write lock excludes every other
// writer (racefree's DSN makes every BEGIN immediate).
func lockOps(_ context.Context, env Env) (Pair, error) {
	db := env.DB
	d := db.Dialect()
	name := "rfbench-lock-" + env.Table
	h := fnv.New64a()
	h.Write([]byte(name))
	key := int64(h.Sum64())

	var raw Op
	var rawSQL string
	switch f := d.Features(); {
	case f.Has(dialect.SingleWriter):
		rawSQL = "BEGIN IMMEDIATE\nCOMMIT"
		raw = func(ctx context.Context, _ *Worker) error {
			tx, err := db.SQL().BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			return tx.Commit()
		}
	case d.Name() == "postgres" && f.Has(dialect.AdvisoryLocks):
		lock := "SELECT pg_advisory_xact_lock(" + d.Placeholder(1) + ")"
		rawSQL = joinSQL("BEGIN", lock, "COMMIT")
		raw = func(ctx context.Context, _ *Worker) error {
			tx, err := db.SQL().BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, lock, key); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		}
	case d.Name() == "mysql" && (f.Has(dialect.AdvisoryLocks) || f.Has(dialect.NodeLocalNamedLocks)):
		const lock, unlock = "SELECT GET_LOCK(?, 10)", "SELECT RELEASE_LOCK(?)"
		rawSQL = joinSQL(lock, unlock, "-- on one connection")
		raw = func(ctx context.Context, _ *Worker) error {
			conn, err := db.SQL().Conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			var got int
			if err := conn.QueryRowContext(ctx, lock, name).Scan(&got); err != nil {
				return err
			}
			if got != 1 {
				return fmt.Errorf("bench: GET_LOCK(%q) returned %d", name, got)
			}
			return conn.QueryRowContext(ctx, unlock, name).Scan(&got)
		}
	default:
		return Pair{}, fmt.Errorf("bench: no named lock of its own on %s: %w", d.Name(), ErrUnsupported)
	}
	rf := func(ctx context.Context, _ *Worker) error {
		return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			return racefree.LockNamed(ctx, tx, name, racefree.LockOptions{})
		})
	}
	return Pair{Raw: raw, Racefree: rf, RawSQL: rawSQL}, nil
}
