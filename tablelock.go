package racefree

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// TableLockMode is what a table lock keeps other sessions from doing.
type TableLockMode uint8

const (
	// LockTableWrite keeps every other session from writing the table
	// (INSERT, UPDATE, DELETE, and locking reads) and from taking the same
	// lock; plain reads go on. It is the lock for "count, then insert if
	// below the limit" over a whole table.
	LockTableWrite TableLockMode = iota + 1
	// LockTableExclusive keeps every other session from reading or writing
	// the table. Only PostgreSQL can take it inside a transaction.
	LockTableExclusive
)

func (m TableLockMode) String() string {
	switch m {
	case LockTableWrite:
		return "write"
	case LockTableExclusive:
		return "exclusive"
	}
	return fmt.Sprintf("TableLockMode(%d)", m)
}

// LockTable locks table in mode until tx commits or rolls back.
//
//   - PostgreSQL: LOCK TABLE … IN SHARE ROW EXCLUSIVE MODE (write) or IN
//     ACCESS EXCLUSIVE MODE (exclusive). Try adds NOWAIT; Timeout sets a
//     transaction-local lock_timeout. Both run in a savepoint so that a
//     refusal leaves tx usable.
//   - MySQL/MariaDB: LOCK TABLES cannot be used: it commits the open
//     transaction, and its lock lasts until UNLOCK TABLES, not until the
//     transaction ends. LockTableWrite is instead SELECT COUNT(*) FROM table
//     FOR UPDATE at REPEATABLE READ or SERIALIZABLE, which puts a next-key
//     lock on every row and gap of the table: no other session can insert,
//     update, delete or lock-read until tx ends, and plain reads go on. It
//     costs one row lock per row, so use it on small tables (a counter
//     table, a settings table); for large ones use LockNamed with the table's
//     name as an application-level lock every writer agrees to take. At
//     READ COMMITTED there are no gap locks, so inserts would go through:
//     LockTable refuses with ErrLockUnsupported there, and also when the
//     isolation of a wrapped transaction is unknown (pass its options to
//     WrapTx). LockTableExclusive is ErrLockUnsupported: InnoDB's plain
//     reads never wait for a lock.
//   - TiDB and CockroachDB: ErrLockUnsupported. CockroachDB has no LOCK
//     TABLE, and TiDB takes no gap locks, so a locking scan would not keep
//     inserts out (its LOCK TABLES locks nothing unless the server runs
//     with enable-table-lock, and would commit the transaction anyway):
//     use LockNamed with the table's name as a lock every writer takes.
//   - SQLite: LockTableWrite takes the database's write lock (see
//     LockClause), which excludes every other writer of every table.
//     LockTableExclusive is ErrLockUnsupported: readers of a WAL database
//     are never blocked.
//
// Bad input — an invalid or unknown table, an unknown mode — returns an
// error matching ErrInvalidInput.
func LockTable(ctx context.Context, tx *Tx, table string, mode TableLockMode, opts LockOptions) (err error) {
	verb := "lock table"
	if tx == nil || tx.db == nil || tx.tx == nil {
		return fmt.Errorf("racefree: %s: nil transaction (a table lock lasts until the transaction ends)", verb)
	}
	start := time.Now()
	defer func() { tx.db.observeLock(ctx, lockKindTable, table, start, err) }()
	if mode != LockTableWrite && mode != LockTableExclusive {
		return inputError(verb, "unknown TableLockMode %d", mode)
	}
	if err := opts.Wait.check(verb); err != nil {
		return err
	}
	d := tx.db.d
	qt, err := d.Quote(table)
	if err != nil {
		return fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
	}
	verb = "lock table " + table + " for " + mode.String()
	f := d.Features()
	tl, ok := d.(dialect.TableLocker)
	switch {
	case f.Has(dialect.SingleWriter):
		return tx.lockTableWriter(ctx, verb, table, qt, mode, opts)
	case !ok || !f.Has(dialect.TableLocks):
		return fmt.Errorf("racefree: %s: %w: %s has no table locks; use LockNamed with the table's name as a lock every writer takes",
			verb, ErrLockUnsupported, d.Server())
	case tx.opts.ReadOnly:
		return fmt.Errorf("racefree: %s: %w: a read-only transaction cannot take write locks", verb, ErrLockUnsupported)
	}
	stmt, err := tl.LockTableSQL(ctx, tx.tx, qt, mode == LockTableExclusive, tx.opts.Isolation, tx.known)
	switch {
	case errors.Is(err, ErrLockUnsupported):
		return fmt.Errorf("racefree: %s: %w", verb, err)
	case err != nil:
		return tx.db.wrapErr(verb, err)
	}
	err = tx.waitForLocks(ctx, opts.Wait.dialect(), func(ctx context.Context) error { return drain(tx.tx.Query(ctx, stmt)) })
	return tableLockErr(tx.db, verb, table, opts, err)
}

// lockTableWriter is LockTable on a single-writer engine: the database's
// write lock, which excludes every other writer of every table.
func (tx *Tx) lockTableWriter(ctx context.Context, verb, table, qt string, mode TableLockMode, opts LockOptions) error {
	d := tx.db.d
	if mode == LockTableExclusive {
		return fmt.Errorf("racefree: %s: %w: %s cannot keep readers out inside a transaction (readers never wait for its write lock); LockTableWrite excludes every writer",
			verb, ErrLockUnsupported, d.Server())
	}
	if tx.opts.ReadOnly {
		return fmt.Errorf("racefree: %s: %w: on %s a table lock is the database's write lock, which a read-only transaction cannot take",
			verb, ErrLockUnsupported, d.Server())
	}
	wl, ok := d.(dialect.WriteLocker)
	if !ok {
		return fmt.Errorf("racefree: %s: %w: the %s dialect cannot take the write lock", verb, ErrLockUnsupported, d.Name())
	}
	// The write lock names no table: make sure this one exists.
	if err := drain(tx.tx.Query(ctx, "SELECT 1 FROM "+qt+" WHERE 1 = 0")); err != nil {
		return tableLockErr(tx.db, verb, table, opts, err)
	}
	err := tx.waitForLocks(ctx, opts.Wait.dialect(), func(ctx context.Context) error {
		return wl.TakeWriteLock(ctx, lockingTx{tx}, lockTableName)
	})
	return tableLockErr(tx.db, verb, table, opts, err)
}

// drain reads and drops the rows of a statement run with Query.
func drain(rows session.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// tableLockErr turns the error of a table lock into racefree's errors: a
// wait that ran out matches ErrLockNotAcquired, an unknown table
// ErrInvalidInput.
func tableLockErr(db *DB, verb, table string, opts LockOptions, err error) error {
	switch {
	case err == nil:
		return nil
	case db.waitRanOut(err):
		return notGranted(verb, opts.Wait, db.classified(err))
	case db.undefined(err, false):
		return fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, db.d.Classify(err))
	}
	return fmt.Errorf("racefree: %s: %w", verb, db.classified(err))
}
