package lab

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
)

// lockName is the named lock of one lookup in the advisory and namedlock
// strategies: the table and the lookup values, so that the lab can list,
// after a run, every name a strategy may have locked.
func lockName(spec *Spec, args []any) string {
	return spec.Table + ":" + fmt.Sprint(args...)
}

// advisoryKey is the PostgreSQL advisory-lock key of a name, as people
// derive one: a 64-bit hash.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// errLockNotGranted: GET_LOCK gave up waiting.
var errLockNotGranted = errors.New("lab: named lock not granted within 30s")

// advisoryLock runs fn on a connection of its own while it holds a named
// session lock, the way people write it: pg_advisory_lock on PostgreSQL,
// GET_LOCK on MySQL/MariaDB. Correct on one server; on a Galera cluster
// GET_LOCK is local to the node, so workers on two nodes hold "the" lock
// at once.
func (w *worker) advisoryLock(ctx context.Context, name string, fn func(q querier) error) error {
	conn, err := w.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var lock, unlock string
	var arg any
	switch w.d.Name() {
	case "postgres":
		lock, unlock, arg = "SELECT pg_advisory_lock($1)", "SELECT pg_advisory_unlock($1)", advisoryKey(name)
		if _, err := conn.ExecContext(ctx, lock, arg); err != nil {
			return err
		}
	case "mysql":
		lock, unlock, arg = "SELECT GET_LOCK(?, 30)", "SELECT RELEASE_LOCK(?)", name
		var got *int64
		if err := conn.QueryRowContext(ctx, lock, arg).Scan(&got); err != nil {
			return err
		}
		if got == nil || *got != 1 {
			return errLockNotGranted
		}
	default:
		return fmt.Errorf("lab: %s has no advisory locks", w.d.Name())
	}
	ferr := fn(conn)
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), unlock, arg); err != nil {
		// A connection that may still hold the lock must not go back to
		// the pool: closing it makes the server release the lock.
		conn.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(ferr, err)
	}
	return ferr
}
