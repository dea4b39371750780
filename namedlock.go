package racefree

import (
	"context"
	"errors"
	"time"

	"github.com/racefree/racefree/dialect"
)

// LockNamed takes a named lock that is held until tx commits or rolls back.
// Two transactions that lock the same name never hold it at once, whichever
// process or machine they run on, so a read-then-write under the lock is
// safe from every other worker that takes the same lock. Every other name,
// of any length or content, is a different lock (names are hashed to keys;
// see package internal/lockkey for the derivation); the empty name is
// refused.
//
// How each engine does it:
//   - PostgreSQL: pg_advisory_xact_lock on a 64-bit hash of the name; Try
//     uses pg_try_advisory_xact_lock, Timeout a transaction-local
//     lock_timeout inside a savepoint, so a timeout leaves tx usable.
//   - MySQL/MariaDB, TiDB, and CockroachDB (no advisory locks): a row of the
//     table racefree_locks (created with CREATE TABLE IF NOT EXISTS on a
//     second pooled connection when a lock statement finds it missing, or
//     at startup by [CreateLockTable]) is written
//     with INSERT … ON DUPLICATE KEY UPDATE (ON CONFLICT on CockroachDB),
//     which takes the row's exclusive lock directly. A row lock belongs to
//     the transaction, so it works in a *sql.Tx you wrapped with WrapTx and
//     is released by COMMIT or ROLLBACK whoever issues them. GET_LOCK is not
//     used: it belongs to the session and survives the transaction. On a
//     MariaDB Galera cluster the row write is certified cluster-wide: two
//     nodes holding the lock at once cannot both commit, one fails with
//     ErrDeadlock, which RunInTx retries. Each acquisition updates the row,
//     so the table holds one small row per name ever locked. A transaction
//     that began before the table existed may not see it even after
//     racefree created it (TiDB's schema is the transaction's snapshot):
//     LockNamed then fails with ErrSerialization, and RunInTx runs the
//     transaction again.
//   - SQLite: one writer at a time already excludes every other writer, so
//     the lock is the database's write lock. LockNamed makes sure tx holds
//     it by writing the lock's row (a transaction begun DEFERRED may not
//     yet), and refuses a transaction begun read-only with
//     ErrLockUnsupported. A DEFERRED transaction that read before another
//     writer committed cannot take the write lock at all: it fails with
//     ErrBusy, which RunInTx retries. Every name excludes every other here.
//     racefree begins its write transactions IMMEDIATE, so they wait for
//     the write lock in BEGIN (up to the busy timeout, and RunInTx retries
//     ErrBusy) and LockNamed then never waits: Try and Timeout matter only
//     in a transaction begun DEFERRED.
//
// Take the lock before the transaction reads what it protects: whether a
// plain read after the lock sees what the previous holder committed
// depends on the engine and the isolation level.
//   - READ COMMITTED (PostgreSQL's default), and SQLite: yes, the lock
//     alone suffices.
//   - MySQL/MariaDB at REPEATABLE READ (their default): yes, if the lock
//     comes before the transaction's first plain read, which is what takes
//     InnoDB's snapshot.
//   - PostgreSQL at REPEATABLE READ or SERIALIZABLE: no. Every statement
//     reads the snapshot taken by the transaction's first statement, the
//     lock call included; a write to a row the previous holder changed
//     fails with a serialization failure, which RunInTx retries, so the
//     lock prevents lost updates only together with those retries.
//   - TiDB at REPEATABLE READ (its default): no, and nothing fails.
//     Plain reads see the snapshot of the transaction's first statement,
//     even when that statement waited for the lock, while its pessimistic
//     writes act on the latest rows: a value read plainly after the lock
//     and written back loses the previous holder's update. Run such
//     transactions at READ COMMITTED, or read what the lock protects with
//     [LockClause] (FOR UPDATE reads the latest committed row). The
//     dialect's [dialect.SnapshotAtFirstStatement] feature marks the
//     engines where a plain read after the lock needs READ COMMITTED.
//
// A transaction-scoped and a session-scoped lock ([AcquireSessionLock]) of the
// same name are not guaranteed to exclude each other: use one kind per
// name.
//
// A lock taken inside a savepoint (a nested RunInTx) that is then rolled
// back may be released with it: PostgreSQL releases advisory locks of an
// aborted subtransaction, and InnoDB releases the lock on a row inserted
// after the savepoint. Take locks in the outermost transaction.
//
// ctx governs the wait, and opts.Wait bounds it (see [Wait]): a lock not
// granted as it allows matches ErrLockNotAcquired, and tx is still usable. A deadlock between named locks (two transactions
// taking two names in opposite orders) fails one of them with ErrDeadlock.
func LockNamed(ctx context.Context, tx *Tx, name string, opts LockOptions) error {
	const verb = "lock name"
	if tx == nil || tx.db == nil || tx.tx == nil {
		return errors.New("racefree: lock name: nil transaction")
	}
	if err := validateLockName(verb, name); err != nil {
		return err
	}
	if err := opts.Wait.check(verb); err != nil {
		return err
	}
	start := time.Now()
	err := tx.lockNamed(ctx, name, opts)
	tx.db.observeLock(ctx, lockKindNamed, name, start, err)
	return err
}

// lockNamed is LockNamed once its input is checked.
func (tx *Tx) lockNamed(ctx context.Context, name string, opts LockOptions) error {
	const verb = "lock name"
	d := tx.db.d
	if d.Features().Has(dialect.SingleWriter) {
		return tx.lockWriter(ctx, verb, name, "the named lock", opts)
	}
	if xl, ok := d.(dialect.XactLocker); ok && d.Features().Has(dialect.AdvisoryLocks) {
		return tx.lockXact(ctx, xl, name, opts)
	}
	return tx.lockTableRow(ctx, name, opts)
}

// lockXact is LockNamed on an engine with transaction-scoped named locks
// of its own.
func (tx *Tx) lockXact(ctx context.Context, xl dialect.XactLocker, name string, opts LockOptions) error {
	const verb = "lock name"
	got, err := xl.LockXact(ctx, lockingTx{tx}, lockKeyOf(name), opts.Wait.dialect())
	if err != nil {
		return tx.lockOutcome(verb, name, opts.Wait, err)
	}
	if !got {
		return notAcquired(verb, name, opts.Wait, nil)
	}
	return nil
}

// lockWriter makes tx hold the database's write lock on a single-writer
// engine, where it is what every lock of a transaction becomes: the named
// lock, row locks and table locks. what says which of these it stands for,
// for errors.
func (tx *Tx) lockWriter(ctx context.Context, verb, name, what string, opts LockOptions) error {
	d := tx.db.d
	if tx.opts.ReadOnly {
		return unsupportedErr(verb, name, "on %s %s is the database's write lock, which a read-only transaction cannot take", d.Server(), what)
	}
	wl, ok := d.(dialect.WriteLocker)
	if !ok {
		return unsupportedErr(verb, name, "the %s dialect cannot take the write lock", d.Name())
	}
	return tx.takeLock(ctx, verb, name, opts.Wait, func(ctx context.Context) error {
		return wl.TakeWriteLock(ctx, lockingTx{tx}, lockTableName)
	})
}
