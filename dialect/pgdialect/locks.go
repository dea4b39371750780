package pgdialect

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/racefree/racefree/dialect"
)

var (
	_ dialect.LockWaiter       = (*Dialect)(nil)
	_ dialect.XactLocker       = (*Dialect)(nil)
	_ dialect.LockTabler       = (*Dialect)(nil)
	_ dialect.SessionLocker    = (*Dialect)(nil)
	_ dialect.RowLocker        = (*Dialect)(nil)
	_ dialect.TableLocker      = (*Dialect)(nil)
	_ dialect.UndefinedChecker = (*Dialect)(nil)
)

// WaitForLocks bounds a wait with lock_timeout, set for the transaction
// only (set_config's is_local) inside a savepoint: a lock timeout aborts
// the statement and, on PostgreSQL, the whole transaction, and rolling
// back to the savepoint is what keeps it usable (and undoes the setting).
// The old value is put back after fn. Try is a timeout of 1 ms, since 0
// would mean none. The zero Wait runs fn as it is: a lock_timeout set on
// the role, the database or the session still applies.
func (d *Dialect) WaitForLocks(ctx context.Context, tx dialect.LockTx, w dialect.Wait, fn func(context.Context) error) error {
	if !w.Bounded() {
		return fn(ctx)
	}
	ms := int64(1)
	if !w.Try {
		ms = max(w.Timeout.Milliseconds(), 1)
	}
	return tx.Savepoint(ctx, func(ctx context.Context) error {
		var old, set string
		if err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, true)",
			strconv.FormatInt(ms, 10)+"ms").Scan(&old, &set); err != nil {
			return err
		}
		if err := fn(ctx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", old)
		return err
	})
}

// LockXact takes pg_advisory_xact_lock on the key; Try is
// pg_try_advisory_xact_lock, which answers at once.
func (d *Dialect) LockXact(ctx context.Context, tx dialect.LockTx, k dialect.LockKey, w dialect.Wait) (bool, error) {
	if w.Try {
		var ok bool
		err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", k.Key).Scan(&ok)
		return ok, err
	}
	err := d.WaitForLocks(ctx, tx, w, func(ctx context.Context) error {
		_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", k.Key)
		return err
	})
	return err == nil, err
}

// CreateLockTableSQL is the lock table for servers without advisory locks
// (CockroachDB).
func (d *Dialect) CreateLockTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + table + " (id BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, acquired BIGINT NOT NULL DEFAULT 0)"
}

// LockRowSQL writes the lock's row with INSERT … ON CONFLICT DO UPDATE,
// which takes the row's lock (a write intent on CockroachDB) directly.
func (d *Dialect) LockRowSQL(table string) string {
	return "INSERT INTO " + table + " (id, name, acquired) VALUES ($1, $2, 1)" +
		" ON CONFLICT (id) DO UPDATE SET acquired = " + table + ".acquired + 1"
}

// LockSession takes pg_advisory_lock on the same 64-bit key as LockXact,
// so that a session lock and a transaction lock of one name exclude each
// other. Try is pg_try_advisory_lock; a Timeout sets the session's
// lock_timeout around the wait and puts it back.
func (d *Dialect) LockSession(ctx context.Context, q dialect.Querier, k dialect.LockKey, w dialect.Wait) (bool, error) {
	if w.Try {
		var ok bool
		err := q.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", k.Key).Scan(&ok)
		return ok, err
	}
	if w.Timeout <= 0 {
		_, err := q.Exec(ctx, "SELECT pg_advisory_lock($1)", k.Key)
		return err == nil, err
	}
	ms := max(w.Timeout.Milliseconds(), 1)
	var old, set string
	if err := q.QueryRow(ctx, "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, false)",
		strconv.FormatInt(ms, 10)+"ms").Scan(&old, &set); err != nil {
		return false, err
	}
	_, err := q.Exec(ctx, "SELECT pg_advisory_lock($1)", k.Key)
	if _, rerr := q.Exec(context.WithoutCancel(ctx), "SELECT set_config('lock_timeout', $1, false)", old); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil && errors.Is(d.Classify(err), dialect.ErrLockNotAcquired) {
		return false, nil // a wait that timed out holds nothing
	}
	return err == nil, err
}

// SessionLockHeld looks for the session's own granted lock in pg_locks,
// where a bigint advisory key is stored as classid (its high 32 bits),
// objid (its low 32 bits) and objsubid 1.
func (d *Dialect) SessionLockHeld(ctx context.Context, q dialect.Querier, k dialect.LockKey) (bool, error) {
	var held bool
	err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"+
		" AND pid = pg_backend_pid() AND objsubid = 1"+
		" AND classid::bigint = (($1::bigint >> 32) & 4294967295) AND objid::bigint = ($1::bigint & 4294967295))",
		k.Key).Scan(&held)
	return held, err
}

// UnlockSession calls pg_advisory_unlock, which answers false when the
// session did not hold the lock.
func (d *Dialect) UnlockSession(ctx context.Context, q dialect.Querier, k dialect.LockKey) (bool, error) {
	var released sql.NullBool
	err := q.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", k.Key).Scan(&released)
	return released.Valid && released.Bool, err
}

// RowLockClause renders FOR UPDATE or FOR SHARE, then NOWAIT or SKIP
// LOCKED.
func (d *Dialect) RowLockClause(share bool, wait dialect.RowWait) string {
	clause := " FOR UPDATE"
	if share {
		clause = " FOR SHARE"
	}
	switch wait {
	case dialect.RowNoWait:
		clause += " NOWAIT"
	case dialect.RowSkipLocked:
		clause += " SKIP LOCKED"
	}
	return clause
}

// LockTableSQL is LOCK TABLE in SHARE ROW EXCLUSIVE mode, which keeps out
// every writer and itself but lets plain SELECTs through, or in ACCESS
// EXCLUSIVE mode, which keeps out everything. Both last until the
// transaction ends, at any isolation level.
func (d *Dialect) LockTableSQL(_ context.Context, _ dialect.Querier, quotedTable string, exclusive bool, _ sql.IsolationLevel, _ bool) (string, error) {
	if exclusive {
		return "LOCK TABLE " + quotedTable + " IN ACCESS EXCLUSIVE MODE", nil
	}
	return "LOCK TABLE " + quotedTable + " IN SHARE ROW EXCLUSIVE MODE", nil
}

// UndefinedTable reports whether err has SQLSTATE 42P01, undefined_table.
func (d *Dialect) UndefinedTable(err error) bool { return d.hasCode(err, codeUndefinedTable) }

// UndefinedColumn reports whether err has SQLSTATE 42703,
// undefined_column.
func (d *Dialect) UndefinedColumn(err error) bool { return d.hasCode(err, codeUndefinedColumn) }

func (d *Dialect) hasCode(err error, code string) bool {
	ce := d.Classify(err)
	return ce != nil && ce.Code == code
}
