package racefree

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
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
//   - MySQL/MariaDB, and CockroachDB (no advisory locks): a row of the
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
//     so the table holds one small row per name ever locked.
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
// Take the lock before the transaction reads what it protects. Under
// MySQL's REPEATABLE READ a snapshot taken by an earlier read does not see
// what the previous holder committed, and on PostgreSQL every statement of
// a REPEATABLE READ or SERIALIZABLE transaction, the lock call included,
// reads the snapshot taken by its first statement: there the lock prevents
// lost updates only together with the serialization failures RunInTx
// retries. At READ COMMITTED (PostgreSQL's default) and on SQLite the lock
// alone suffices.
//
// A transaction-scoped and a session-scoped lock ([LockSession]) of the
// same name are not guaranteed to exclude each other: use one kind per
// name.
//
// A lock taken inside a savepoint (a nested RunInTx) that is then rolled
// back may be released with it: PostgreSQL releases advisory locks of an
// aborted subtransaction, and InnoDB releases the lock on a row inserted
// after the savepoint. Take locks in the outermost transaction.
//
// ctx governs the wait; see [LockOptions] for Try and Timeout. A timeout
// matches ErrLockTimeout and a failed Try ErrLockNotAcquired; in both cases
// tx is still usable. A deadlock between named locks (two transactions
// taking two names in opposite orders) fails one of them with ErrDeadlock.
func LockNamed(ctx context.Context, tx *Tx, name string, opts LockOptions) error {
	const verb = "lock name"
	if tx == nil || tx.db == nil || tx.tx == nil {
		return errors.New("racefree: lock name: nil transaction")
	}
	if err := validateLockName(verb, name); err != nil {
		return err
	}
	d := tx.db.d
	switch {
	case d.Name() == "postgres" && d.Features().Has(dialect.AdvisoryLocks):
		return tx.lockAdvisoryXact(ctx, name, opts)
	case d.Name() == "sqlite":
		return tx.lockSQLiteWrite(ctx, name, opts)
	default:
		return tx.lockTableRow(ctx, name, opts)
	}
}

// lockAdvisoryXact is LockNamed on PostgreSQL.
func (tx *Tx) lockAdvisoryXact(ctx context.Context, name string, opts LockOptions) error {
	const verb = "lock name"
	key := lockkey.Key64(name)
	switch {
	case opts.Try:
		var ok bool
		if err := tx.tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", key).Scan(&ok); err != nil {
			return tx.db.wrapErr(verb, err)
		}
		if !ok {
			return lockNotAcquiredErr(verb, name)
		}
		return nil
	case opts.Timeout > 0:
		err := tx.pgWithLockTimeout(ctx, opts.Timeout, func(ctx context.Context) error {
			_, err := tx.tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", key)
			return err
		})
		return tx.lockResult(verb, name, err)
	}
	_, err := tx.tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", key)
	return tx.db.wrapErr(verb, err)
}

// lockResult turns the error of a bounded lock wait into racefree's lock
// errors.
func (tx *Tx) lockResult(verb, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrLockTimeout) {
		return lockTimeoutErr(verb, name, err)
	}
	if errors.Is(err, ErrLockNotAcquired) {
		return err
	}
	return fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), classifyTransparent(tx.db.d, err))
}

// pgWithLockTimeout runs fn with lock_timeout set to d for the duration of
// fn only, inside a savepoint: a lock timeout aborts the statement and, on
// PostgreSQL, the transaction, and rolling back to the savepoint is what
// keeps tx usable. The old lock_timeout is put back afterwards (set_config
// with is_local is itself undone by a rollback to the savepoint).
func (tx *Tx) pgWithLockTimeout(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1 // 0 would mean "no timeout"
	}
	return tx.savepoint(ctx, func(ctx context.Context) error {
		var old, set string
		if err := tx.tx.QueryRow(ctx, "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, true)",
			strconv.FormatInt(ms, 10)+"ms").Scan(&old, &set); err != nil {
			return err
		}
		if err := fn(ctx); err != nil {
			return err
		}
		_, err := tx.tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", old)
		return err
	})
}

// lockTableName is the table that holds one row per named lock on engines
// whose transaction-scoped named lock is a row lock.
const lockTableName = "racefree_locks"

// lockTableState is what racefree knows about the lock table of one DB.
type lockTableState struct {
	mu    sync.Mutex  // serializes creating the table
	ready atomic.Bool // a lock statement has found the table
}

// lockTables maps each *DB to its *lockTableState. A package-level map
// rather than a DB field keeps the lock code in its own files; a DB is
// long-lived, so the entries cost nothing worth reclaiming.
var lockTables sync.Map

func (db *DB) lockTable() *lockTableState {
	if s, ok := lockTables.Load(db); ok {
		return s.(*lockTableState)
	}
	s, _ := lockTables.LoadOrStore(db, &lockTableState{})
	return s.(*lockTableState)
}

// isUndefinedTable reports whether err says a table does not exist.
func (db *DB) isUndefinedTable(err error) bool {
	switch db.d.Classify(err).Code {
	case "1146", "42P01": // MySQL ER_NO_SUCH_TABLE, PostgreSQL undefined_table
		return true
	}
	return false
}

// createLockTable creates racefree_locks on MySQL or CockroachDB. It runs
// on a second pooled connection, never in the caller's transaction: DDL
// commits the open transaction on MySQL. It is called only after a lock
// statement found no table, so a running system never needs a second
// connection for a lock; the wait for one is bounded so that a pool whose
// every connection waits here fails with a clear error instead of hanging.
func (db *DB) createLockTable(ctx context.Context) error {
	s := db.lockTable()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready.Load() {
		return nil
	}
	ddl := "CREATE TABLE IF NOT EXISTS " + lockTableName +
		" (id BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, acquired BIGINT NOT NULL DEFAULT 0)"
	if db.d.Name() == "mysql" {
		ddl = "CREATE TABLE IF NOT EXISTS " + lockTableName +
			" (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, acquired BIGINT NOT NULL DEFAULT 0)" +
			" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := db.pool.Acquire(cctx)
	if err != nil {
		return fmt.Errorf("racefree: create lock table %s: no free connection (create it at startup with CreateLockTable): %w",
			lockTableName, db.d.Classify(err))
	}
	defer conn.Release()
	_, err = conn.Exec(ctx, ddl)
	// Two sessions creating the table at once can collide on the
	// catalog's unique index on PostgreSQL; the table exists either way.
	if err != nil && !errors.Is(db.d.Classify(err), ErrUniqueViolation) {
		return db.wrapErr("create lock table "+lockTableName, err)
	}
	return nil
}

// CreateLockTable creates the table racefree_locks that holds LockNamed's
// locks on MySQL/MariaDB and CockroachDB, if it does not exist yet. LockNamed
// creates it on first use, on a second pooled connection; call this at
// startup instead when the pool may be exhausted then, or when the
// application's database user may not create tables (then create it once
// as an administrator). It does nothing on PostgreSQL and SQLite.
func CreateLockTable(ctx context.Context, db *DB) error {
	if db == nil || db.pool == nil {
		return errNilExecutor
	}
	if db.d.Name() == "sqlite" || db.d.Features().Has(dialect.AdvisoryLocks) && db.d.Name() == "postgres" {
		return nil
	}
	return db.createLockTable(ctx)
}

// lockTableRow is LockNamed on MySQL/MariaDB and on PostgreSQL-protocol
// engines without advisory locks.
func (tx *Tx) lockTableRow(ctx context.Context, name string, opts LockOptions) error {
	const verb = "lock name"
	if tx.opts.ReadOnly {
		return fmt.Errorf("racefree: %s %q: %w: on %s the named lock is a row write, which a read-only transaction cannot make",
			verb, lockkey.Label(name, 64), ErrLockUnsupported, tx.db.d.Name())
	}
	state := tx.db.lockTable()
	lock := tx.lockTableRowPG
	if tx.db.d.Name() == "mysql" {
		lock = tx.lockTableRowMySQL
	}
	var err error
	if !state.ready.Load() && tx.db.d.Name() != "mysql" {
		// On PostgreSQL a missing table aborts the transaction: look for
		// it inside a savepoint until it has been found once.
		err = tx.savepoint(ctx, func(ctx context.Context) error { return lock(ctx, name, opts) })
	} else {
		err = lock(ctx, name, opts)
	}
	if err != nil && tx.db.isUndefinedTable(err) {
		if cerr := tx.db.createLockTable(ctx); cerr != nil {
			return cerr
		}
		err = lock(ctx, name, opts)
	}
	if err == nil {
		state.ready.Store(true)
	}
	return err
}

// lockTableRowPG writes the lock's row with INSERT … ON CONFLICT.
func (tx *Tx) lockTableRowPG(ctx context.Context, name string, opts LockOptions) error {
	const verb = "lock name"
	const upsert = "INSERT INTO " + lockTableName + " (id, name, acquired) VALUES ($1, $2, 1)" +
		" ON CONFLICT (id) DO UPDATE SET acquired = " + lockTableName + ".acquired + 1"
	key, label := lockkey.Key64(name), lockkey.Label(name, 255)
	run := func(ctx context.Context) error {
		_, err := tx.tx.Exec(ctx, upsert, key, label)
		return err
	}
	if !opts.Try && opts.Timeout <= 0 {
		return tx.db.wrapErr(verb, run(ctx))
	}
	timeout := opts.Timeout
	if opts.Try {
		timeout = time.Millisecond
	}
	err := tx.lockResult(verb, name, tx.pgWithLockTimeout(ctx, timeout, run))
	if opts.Try && errors.Is(err, ErrLockTimeout) {
		return lockNotAcquiredErr(verb, name)
	}
	return err
}

// lockTableRowMySQL writes the lock's row with INSERT … ON DUPLICATE KEY
// UPDATE, which takes the row's exclusive lock directly (INSERT IGNORE
// followed by SELECT … FOR UPDATE would take a shared lock first, and two
// sessions upgrading shared locks deadlock).
func (tx *Tx) lockTableRowMySQL(ctx context.Context, name string, opts LockOptions) error {
	const verb = "lock name"
	// The update must change the row: Galera certifies only rows a
	// transaction really changed, and a no-op update would let two nodes
	// hold the lock at once.
	const upsert = "INSERT INTO " + lockTableName + " (id, name, acquired) VALUES (?, ?, 1)" +
		" ON DUPLICATE KEY UPDATE acquired = acquired + 1"
	key, label := lockkey.Key64(name), lockkey.Label(name, 255)
	run := func(ctx context.Context) error {
		_, err := tx.tx.Exec(ctx, upsert, key, label)
		return err
	}
	if opts.Try || opts.Timeout > 0 {
		// 0 makes MariaDB 10.3+ refuse at once; MySQL raises it to 1 s.
		secs := 0
		if !opts.Try {
			secs = int((opts.Timeout + time.Second - 1) / time.Second)
		}
		err := tx.mysqlWithLockWait(ctx, secs, run)
		if err != nil && errors.Is(tx.db.d.Classify(err), ErrLockTimeout) {
			if opts.Try {
				return lockNotAcquiredErr(verb, name)
			}
			return lockTimeoutErr(verb, name, tx.db.d.Classify(err))
		}
		return tx.db.wrapErr(verb, err)
	}
	for {
		err := run(ctx)
		if err == nil {
			return nil
		}
		// 1205 rolls back only the statement, unless
		// innodb_rollback_on_timeout is on: then the transaction is gone
		// and waiting again would run outside it. Otherwise wait again,
		// since the zero LockOptions wait until ctx ends.
		if ce := tx.db.d.Classify(err); ce.Class != dialect.ClassLockTimeout || ctx.Err() != nil || tx.mysqlRollbackOnTimeout(ctx) {
			return tx.db.wrapErr(verb, err)
		}
	}
}

// mysqlRollbackOnTimeout reads innodb_rollback_on_timeout; reading a
// variable takes no snapshot. An error counts as "on", the safe answer.
func (tx *Tx) mysqlRollbackOnTimeout(ctx context.Context) bool {
	var on string
	if err := tx.tx.QueryRow(ctx, "SELECT @@innodb_rollback_on_timeout").Scan(&on); err != nil {
		return true
	}
	return on == "1" || strings.EqualFold(on, "ON")
}

// mysqlWithLockWait runs fn with innodb_lock_wait_timeout set to secs and
// puts the session's value back afterwards, even if ctx ended.
func (tx *Tx) mysqlWithLockWait(ctx context.Context, secs int, fn func(context.Context) error) error {
	if _, err := tx.tx.Exec(ctx, "SET @racefree_lwt = @@SESSION.innodb_lock_wait_timeout, SESSION innodb_lock_wait_timeout = "+
		strconv.Itoa(secs)); err != nil {
		return err
	}
	err := fn(ctx)
	if _, rerr := tx.tx.Exec(context.WithoutCancel(ctx), "SET SESSION innodb_lock_wait_timeout = @racefree_lwt"); rerr != nil {
		return errors.Join(err, fmt.Errorf("racefree: restore innodb_lock_wait_timeout: %w", rerr))
	}
	return err
}

// SQLite extended result codes LockNamed tells apart.
const (
	sqliteBusySnapshot = "517" // SQLITE_BUSY_SNAPSHOT: the snapshot is stale, waiting cannot help
)

// lockSQLiteWrite is LockNamed on SQLite: make sure tx holds the database's
// write lock.
func (tx *Tx) lockSQLiteWrite(ctx context.Context, name string, opts LockOptions) error {
	const verb = "lock name"
	if tx.opts.ReadOnly {
		return fmt.Errorf("racefree: %s %q: %w: SQLite's named lock is its write lock, which a read-only transaction cannot take",
			verb, lockkey.Label(name, 64), ErrLockUnsupported)
	}
	run := tx.sqliteTakeWriteLock
	if opts.Try || opts.Timeout > 0 {
		ms := opts.Timeout.Milliseconds()
		if opts.Try {
			ms = 0
		} else if ms < 1 {
			ms = 1
		}
		err := tx.sqliteWithBusyTimeout(ctx, ms, run)
		if ce := tx.db.d.Classify(err); err != nil && ce.Class == dialect.ClassBusy && ce.Code != sqliteBusySnapshot {
			if opts.Try {
				return lockNotAcquiredErr(verb, name)
			}
			return lockTimeoutErr(verb, name, ce)
		}
		return tx.db.wrapErr(verb, err)
	}
	// SQLite's busy wait does not watch ctx, so a cancelable ctx is
	// checked between waits of sqliteCtxSlice.
	step := run
	if ctx.Done() != nil {
		step = func(ctx context.Context) error {
			return tx.sqliteWithBusyTimeout(ctx, sqliteCtxSlice.Milliseconds(), run)
		}
	}
	for {
		err := step(ctx)
		if err == nil {
			return nil
		}
		// A plain SQLITE_BUSY means the busy timeout ran out: wait again,
		// since the zero LockOptions wait until ctx ends. BUSY_SNAPSHOT
		// cannot be waited out; RunInTx retries the transaction.
		ce := tx.db.d.Classify(err)
		if ce.Class == dialect.ClassBusy && ce.Code != sqliteBusySnapshot && ctx.Err() != nil {
			return fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), dialect.Wrap(dialect.ClassCanceled, errors.Join(ctx.Err(), err)))
		}
		if ce.Class != dialect.ClassBusy || ce.Code == sqliteBusySnapshot {
			return tx.db.wrapErr(verb, err)
		}
	}
}

// sqliteCtxSlice is how long one busy wait lasts when ctx can end it.
const sqliteCtxSlice = 100 * time.Millisecond

// sqliteTakeWriteLock makes tx take SQLite's write lock, if it does not
// hold it yet, without writing anything: a DELETE that matches no row still
// begins a write transaction (measured: another connection's BEGIN
// IMMEDIATE is then refused). The table it names is racefree_locks, created
// here when missing, inside tx: creating it on another connection would
// wait for tx's own write lock.
func (tx *Tx) sqliteTakeWriteLock(ctx context.Context) error {
	_, err := tx.tx.Exec(ctx, "DELETE FROM "+lockTableName+" WHERE 0")
	if err != nil && strings.Contains(err.Error(), "no such table: "+lockTableName) {
		_, err = tx.tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+lockTableName+
			" (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, acquired INTEGER NOT NULL DEFAULT 0)")
		if err == nil {
			// CREATE … IF NOT EXISTS writes nothing when another connection
			// created the table in the meantime: make sure of the lock.
			_, err = tx.tx.Exec(ctx, "DELETE FROM "+lockTableName+" WHERE 0")
		}
	}
	return err
}

// sqliteWithBusyTimeout runs fn with the connection's busy timeout set to
// ms and puts the old value back afterwards.
func (tx *Tx) sqliteWithBusyTimeout(ctx context.Context, ms int64, fn func(context.Context) error) error {
	var old int64
	if err := tx.tx.QueryRow(ctx, "PRAGMA busy_timeout").Scan(&old); err != nil {
		return err
	}
	if _, err := tx.tx.Exec(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(ms, 10)); err != nil {
		return err
	}
	err := fn(ctx)
	if _, rerr := tx.tx.Exec(context.WithoutCancel(ctx), "PRAGMA busy_timeout = "+strconv.FormatInt(old, 10)); rerr != nil {
		return errors.Join(err, fmt.Errorf("racefree: restore busy_timeout: %w", rerr))
	}
	return err
}
