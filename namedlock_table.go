package racefree

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
)

// lockTableName is the table that holds one row per named lock on engines
// whose transaction-scoped named lock is a row lock (see LockNamed); on a
// single-writer engine, the table whose write takes the write lock.
const lockTableName = "racefree_locks"

// lockTableState is what a DB knows about its lock table. The zero value
// knows nothing.
type lockTableState struct {
	mu    sync.Mutex  // serializes creating the table
	ready atomic.Bool // a lock statement found the table, or CreateLockTable made sure of it
}

// CreateLockTable creates the table racefree_locks that holds LockNamed's
// locks on MySQL/MariaDB, TiDB and CockroachDB, if it does not exist yet.
// LockNamed creates it on first use, on a second pooled connection; call
// this at startup instead when the pool may be exhausted then, or when the
// application's database user may not create tables (then create it once
// as an administrator). It does nothing on PostgreSQL, whose named locks
// need no table, nor on SQLite, where the locking calls (LockNamed,
// LockRows, LockTable, LockClause) create the table inside the locking
// transaction itself, which already holds the write lock, when it is
// missing.
func CreateLockTable(ctx context.Context, db *DB) error {
	if db == nil || db.pool == nil {
		return errNilExecutor
	}
	f := db.d.Features()
	if _, ok := db.d.(dialect.XactLocker); f.Has(dialect.SingleWriter) || ok && f.Has(dialect.AdvisoryLocks) {
		return nil
	}
	if db.locks.ready.Load() {
		return nil
	}
	return db.createLockTable(ctx, true)
}

// errLockTableBusy is what a transaction gets when it finds no lock table
// while another call of the same DB is creating it. Waiting for that call
// would hold this transaction's connection, and the creator needs a free
// one: with every pooled connection in a transaction waiting here, none
// would come. The transaction is to run again instead (RunInTx does), which
// returns its connection to the pool first.
var errLockTableBusy = dialect.Wrap(dialect.ClassSerialization,
	fmt.Errorf("racefree: lock table %s is being created by another call on a second connection: run the transaction again", lockTableName))

// createLockTable creates racefree_locks unless it exists. It runs on a
// second pooled connection, never in the caller's transaction: DDL commits
// the open transaction on MySQL. LockNamed calls it only after a lock
// statement found no table, so a running system never needs a second
// connection for a lock; the wait for one is bounded so that a pool whose
// every connection waits here fails with a clear error instead of hanging.
// wait says whether to wait while another call creates the table; a call
// that holds a connection in a transaction must not (errLockTableBusy).
func (db *DB) createLockTable(ctx context.Context, wait bool) error {
	lt, ok := db.d.(dialect.LockTabler)
	if !ok {
		return fmt.Errorf("racefree: create lock table %s: %w: %s has no named locks", lockTableName, ErrLockUnsupported, db.d.Server())
	}
	if wait {
		db.locks.mu.Lock()
	} else if !db.locks.mu.TryLock() {
		return errLockTableBusy
	}
	defer db.locks.mu.Unlock()
	if db.locks.ready.Load() {
		return nil // created by the call this one waited for
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := db.pool.Acquire(cctx)
	if err != nil {
		return fmt.Errorf("racefree: create lock table %s: no free connection (create it at startup with CreateLockTable): %w",
			lockTableName, db.d.Classify(err))
	}
	defer conn.Release()
	_, err = conn.Exec(ctx, lt.CreateLockTableSQL(lockTableName))
	// Two sessions creating the table at once can collide on the
	// catalog's unique index on PostgreSQL; the table exists either way.
	if err != nil && !errors.Is(db.d.Classify(err), ErrUniqueViolation) {
		return db.wrapErr("create lock table "+lockTableName, err)
	}
	db.locks.ready.Store(true)
	return nil
}

// lockTableRow is LockNamed on engines without transaction-scoped named
// locks of their own: it writes the lock's row of racefree_locks, whose
// row lock is held until tx ends.
func (tx *Tx) lockTableRow(ctx context.Context, name string, opts LockOptions) error {
	const verb = "lock name"
	d := tx.db.d
	lt, ok := d.(dialect.LockTabler)
	if !ok {
		return unsupportedErr(verb, name, "%s has no named locks", d.Server())
	}
	if tx.opts.ReadOnly {
		return unsupportedErr(verb, name, "on %s the named lock is a row write, which a read-only transaction cannot make", d.Server())
	}
	stmt := lt.LockRowSQL(lockTableName)
	key, label := lockkey.Key64(name), lockkey.Label(name, 255)
	lock := func(ctx context.Context) error {
		return tx.waitForLocks(ctx, opts.Wait.dialect(), func(ctx context.Context) error {
			_, err := tx.tx.Exec(ctx, stmt, key, label)
			return err
		})
	}
	state := &tx.db.locks
	var err error
	if !state.ready.Load() && d.Features().Has(dialect.FailedStatementAbortsTx) {
		// There a missing table aborts the transaction: look for it
		// inside a savepoint until it has been found once.
		err = tx.savepoint(ctx, lock)
	} else {
		err = lock(ctx)
	}
	if err != nil && tx.db.undefined(err, false) {
		if cerr := tx.db.createLockTable(ctx, false); cerr != nil {
			return cerr
		}
		err = lock(ctx)
		if tx.db.undefined(err, false) {
			// The table exists now, but not for tx: its schema is the
			// snapshot it began with. A transaction begun now sees it. The
			// driver's error is not wrapped, so that its own class does not
			// hide this one from RunInTx.
			err = dialect.Wrap(dialect.ClassSerialization,
				fmt.Errorf("%s was created after the transaction began, which cannot see it: run the transaction again (%v)", lockTableName, err))
		}
	}
	if err == nil {
		state.ready.Store(true)
	}
	return tx.lockOutcome(verb, name, opts.Wait, err)
}
