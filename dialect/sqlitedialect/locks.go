package sqlitedialect

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/racefree/racefree/dialect"
)

var (
	_ dialect.LockWaiter       = (*Dialect)(nil)
	_ dialect.WriteLocker      = (*Dialect)(nil)
	_ dialect.UndefinedChecker = (*Dialect)(nil)
)

// ctxSlice is how long one busy wait lasts when ctx can end the wait:
// SQLite's busy handler does not watch ctx.
const ctxSlice = 100 * time.Millisecond

// WaitForLocks bounds a wait with the connection's busy timeout, set
// around fn and put back afterwards (Try is 0: refuse at once). A plain
// SQLITE_BUSY then means the wait ran out and is returned as a lock
// timeout. SQLITE_BUSY_SNAPSHOT is not: it says the transaction's snapshot
// is older than the last commit, so that it can never take the write lock;
// waiting cannot help, and it stays a busy error, which RunInTx retries.
//
// The zero Wait waits until ctx ends, in busy waits of 100 ms with ctx
// checked between them (or, when ctx cannot end, in busy waits of the
// connection's own timeout).
func (d *Dialect) WaitForLocks(ctx context.Context, tx dialect.LockTx, w dialect.Wait, fn func(context.Context) error) error {
	if w.Bounded() {
		ms := max(w.Timeout.Milliseconds(), 1)
		if w.Try {
			ms = 0
		}
		err := withBusyTimeout(ctx, tx, ms, fn)
		if d.waitRanOut(err) {
			return dialect.Wrap(dialect.ClassLockNotAcquired, err)
		}
		return err
	}
	step := fn
	if ctx.Done() != nil {
		step = func(ctx context.Context) error { return withBusyTimeout(ctx, tx, ctxSlice.Milliseconds(), fn) }
	}
	for {
		err := step(ctx)
		switch {
		case err == nil:
			return nil
		case !d.waitRanOut(err):
			return err
		case ctx.Err() != nil:
			return dialect.Wrap(dialect.ClassCanceled, errors.Join(ctx.Err(), err))
		}
	}
}

// waitRanOut reports a busy error that a longer wait could get past: any
// but SQLITE_BUSY_SNAPSHOT.
func (d *Dialect) waitRanOut(err error) bool {
	ce := d.Classify(err)
	return ce != nil && ce.Class == dialect.ClassBusy && ce.Code != strconv.Itoa(sqlite3.SQLITE_BUSY_SNAPSHOT)
}

// withBusyTimeout runs fn with the connection's busy timeout set to ms and
// puts the old value back afterwards.
func withBusyTimeout(ctx context.Context, q dialect.Querier, ms int64, fn func(context.Context) error) error {
	var old int64
	if err := q.QueryRow(ctx, "PRAGMA busy_timeout").Scan(&old); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(ms, 10)); err != nil {
		return err
	}
	err := fn(ctx)
	if _, rerr := q.Exec(context.WithoutCancel(ctx), "PRAGMA busy_timeout = "+strconv.FormatInt(old, 10)); rerr != nil {
		return errors.Join(err, errors.New("sqlitedialect: restore busy_timeout: "+rerr.Error()))
	}
	return err
}

// TakeWriteLock makes the transaction take SQLite's write lock, if it does
// not hold it yet, without writing anything: a DELETE that matches no row
// still begins a write transaction (measured: another connection's BEGIN
// IMMEDIATE is then refused). The table it names is created here when
// missing, inside the transaction: creating it on another connection would
// wait for this transaction's own write lock.
func (d *Dialect) TakeWriteLock(ctx context.Context, q dialect.Querier, lockTable string) error {
	_, err := q.Exec(ctx, "DELETE FROM "+lockTable+" WHERE 0")
	if err != nil && d.UndefinedTable(err) {
		_, err = q.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+lockTable+
			" (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, acquired INTEGER NOT NULL DEFAULT 0)")
		if err == nil {
			// CREATE … IF NOT EXISTS writes nothing when another connection
			// created the table in the meantime: make sure of the lock.
			_, err = q.Exec(ctx, "DELETE FROM "+lockTable+" WHERE 0")
		}
	}
	return err
}

// UndefinedTable reports whether err's message says "no such table":
// SQLite says so only in the message (its code is the generic
// SQLITE_ERROR).
func (d *Dialect) UndefinedTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// UndefinedColumn reports whether err's message says "no such column",
// for the same reason.
func (d *Dialect) UndefinedColumn(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such column")
}
