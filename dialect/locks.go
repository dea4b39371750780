package dialect

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Locks. The root package's lock verbs (LockNamed, AcquireSessionLock, LockRows,
// LockClause, LockTable) decide what to lock and report the outcome; these
// optional interfaces say how an engine does it. The root asks for each
// with a type assertion, checks the Features that say whether the server
// has the lock at all (AdvisoryLocks, ForShare, NoWait, SkipLocked,
// TableLocks, SingleWriter), and refuses with ErrLockUnsupported what
// neither offers: a lock is never silently dropped.

// ErrLockUnsupported is returned when the engine cannot take the lock asked
// for in the place it was asked for. A dialect wraps it with the reason;
// the root package re-exports it.
var ErrLockUnsupported = errors.New("racefree: lock not supported here")

// LockKey names a named lock: Name as the caller gave it, and Key, a 64-bit
// hash of it, for engines whose named locks take integers. Equal names
// have equal keys; different names almost surely do not.
type LockKey struct {
	Name string
	Key  int64
}

// Wait is how long a statement may wait for a lock another session holds.
// The zero value waits until the context ends.
type Wait struct {
	// Try refuses at once: the lock is taken only if it is free.
	Try bool
	// Timeout, if positive and Try is false, bounds the wait.
	Timeout time.Duration
}

// Bounded reports whether the wait may end before the context does.
func (w Wait) Bounded() bool { return w.Try || w.Timeout > 0 }

// LockTx is a transaction as a dialect sees it while it takes a lock. It
// runs statements, and runs part of itself in a savepoint, which an engine
// whose failed statements abort the transaction needs so that a lock wait
// that ran out leaves the transaction usable. The root's transactions
// implement it.
type LockTx interface {
	Querier
	// Savepoint runs fn between SAVEPOINT and RELEASE SAVEPOINT. When fn
	// fails it rolls back to the savepoint, which undoes fn's statements
	// and the aborted state a failed one left, and returns fn's error.
	Savepoint(ctx context.Context, fn func(context.Context) error) error
}

// LockWaiter bounds how long statements wait for locks. Without it a lock
// call can only wait as long as the server lets it: Try and Timeout are
// refused with ErrLockUnsupported.
type LockWaiter interface {
	// WaitForLocks runs fn, whose statements on tx may wait for row,
	// table or named locks, with those waits bounded as w says, and
	// afterwards puts the session's own bound back, even when ctx has
	// ended. A bounded wait that ran out (Try or Timeout) is returned as
	// an error of ClassLockNotAcquired. The zero Wait waits until ctx ends:
	// where the server's own bound ends a wait and leaves the transaction
	// usable, the dialect waits again; a wait ctx ended is ClassCanceled.
	// fn may run more than once, and must then do the same thing again.
	WaitForLocks(ctx context.Context, tx LockTx, w Wait, fn func(context.Context) error) error
}

// XactLocker is implemented by engines with transaction-scoped named
// locks of their own (PostgreSQL's advisory locks). The root uses it only
// when Features has AdvisoryLocks; otherwise a transaction's named lock is
// the row of a lock table (LockTabler), or, on a SingleWriter engine, the
// database's write lock (WriteLocker).
type XactLocker interface {
	// LockXact takes the lock k until tx ends, waiting as w says. It
	// returns false, holding nothing, when Try found the lock held; a
	// Timeout that ran out is an error of ClassLockNotAcquired, and tx is
	// still usable.
	LockXact(ctx context.Context, tx LockTx, k LockKey, w Wait) (bool, error)
}

// LockTabler renders the lock table: the transaction-scoped named lock of
// engines without one of their own (MySQL, MariaDB, TiDB, CockroachDB),
// a table with one row per name, whose row lock is the named lock. A row
// lock belongs to the transaction, so the lock is released by COMMIT or
// ROLLBACK, whoever issues them.
type LockTabler interface {
	// CreateLockTableSQL returns the statement that creates table, unless
	// it exists, with the columns id (a BIGINT primary key), name (text of
	// up to 255 characters) and acquired (a BIGINT counter, default 0).
	CreateLockTableSQL(table string) string
	// LockRowSQL returns the statement that writes the row of table whose
	// id is its first parameter (name is the second): it inserts the row
	// with acquired = 1, or adds 1 to acquired, and so takes the row's
	// exclusive lock directly. Two sessions that took a shared lock first
	// and then upgraded it would deadlock; and the update must change the
	// row, since a Galera cluster certifies only rows a transaction
	// really changed.
	LockRowSQL(table string) string
}

// WriteLocker is implemented by engines with one writer at a time
// (Features has SingleWriter: SQLite). Their one lock is the database's
// write lock, which already excludes every other writer: it is what every
// named, row and table lock of a transaction becomes.
type WriteLocker interface {
	// TakeWriteLock makes the transaction q hold the database's write
	// lock, if it does not yet, without changing anything; lockTable
	// names a table the dialect may create for the purpose. It waits as
	// the session's busy handling says; bound it with WaitForLocks.
	TakeWriteLock(ctx context.Context, q Querier, lockTable string) error
}

// SessionLocker is implemented by engines with session-scoped named locks
// (pg_advisory_lock, GET_LOCK). The root uses it only when Features has
// AdvisoryLocks: a Galera node's GET_LOCK (NodeLocalNamedLocks) excludes
// only sessions on the same node. q is a connection the root has taken
// from the pool for as long as the lock is held.
type SessionLocker interface {
	// LockSession takes k on the session q, to hold it until
	// UnlockSession or until the session ends, waiting as w says. It
	// returns false, with the session holding nothing, when Try found the
	// lock held or the Timeout ran out. After an error the session's lock
	// state is in doubt, and the root closes the connection.
	LockSession(ctx context.Context, q Querier, k LockKey, w Wait) (bool, error)
	// SessionLockHeld reports whether the session q holds k.
	SessionLockHeld(ctx context.Context, q Querier, k LockKey) (bool, error)
	// UnlockSession releases k on q, and returns false when q did not
	// hold it.
	UnlockSession(ctx context.Context, q Querier, k LockKey) (bool, error)
}

// RowWait is what a row-locking read does about rows another transaction
// holds.
type RowWait uint8

// The row waits, as RowLocker renders them.
const (
	// RowWaitForLock waits for the rows.
	RowWaitForLock RowWait = iota
	// RowNoWait fails at once with an error of ClassLockNotAcquired.
	RowNoWait
	// RowSkipLocked leaves held rows out of the result.
	RowSkipLocked
)

// RowLocker renders the clauses that make a SELECT lock the rows it reads.
// The root checks Features first (ForUpdate, ForShare, NoWait,
// SkipLocked), so a dialect renders only what its server has.
type RowLocker interface {
	// RowLockClause returns the clause to append to a SELECT, with its
	// leading space: an exclusive lock, or a shared one when share is
	// set, with wait's behaviour for held rows.
	RowLockClause(share bool, wait RowWait) string
}

// TableLocker renders table locks that last until the transaction ends.
type TableLocker interface {
	// LockTableSQL returns the statement that locks the quoted table in
	// the transaction q until it ends: against every other writer and
	// locking reader, or, when exclusive, against plain readers too. iso
	// is the level the transaction was begun with (sql.LevelDefault: the
	// session's), known false when the caller did not say, for engines
	// whose lock depends on it; a dialect may read the session's level on
	// q. An error wrapping ErrLockUnsupported says why the engine cannot
	// take the lock in this transaction. The statement may return rows,
	// which the root reads and drops.
	LockTableSQL(ctx context.Context, q Querier, quotedTable string, exclusive bool, iso sql.IsolationLevel, known bool) (string, error)
}

// UndefinedChecker tells the errors of statements that name a table or a
// column the database does not have, so that the root reports them as bad
// input, and creates its own tables when they are missing.
type UndefinedChecker interface {
	// UndefinedTable reports whether err says a table does not exist.
	UndefinedTable(err error) bool
	// UndefinedColumn reports whether err says a column does not exist.
	UndefinedColumn(err error) bool
}
