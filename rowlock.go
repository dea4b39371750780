package racefree

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/racefree/racefree/dialect"
)

// RowLockOptions say how LockRows and LockClause lock the rows they read.
// The zero value is FOR UPDATE, waiting until ctx ends.
type RowLockOptions struct {
	// Share takes a shared lock (FOR SHARE; LOCK IN SHARE MODE on MariaDB):
	// other transactions may share-lock the rows too, but nobody may update
	// or delete them. Two transactions that share-lock a row and then both
	// update it deadlock: lock FOR UPDATE what you will write.
	Share bool
	// SkipLocked leaves the rows other transactions hold out of the
	// result instead of waiting for them (SKIP LOCKED): the queue-worker
	// pattern. It never waits, so it cannot be combined with a Wait.
	SkipLocked bool
	// Wait says how long to wait for rows other transactions hold: Try is
	// NOWAIT; a Timeout bounds the wait (LockRows only: a clause cannot
	// carry it).
	Wait Wait
}

// rowLockVerb names the operation in errors.
func (l RowLockOptions) verb() string {
	if l.Share {
		return "lock rows for share"
	}
	return "lock rows for update"
}

// LockClause returns the clause that makes a SELECT inside tx lock the
// rows it reads, to append to your query: " FOR UPDATE", " FOR SHARE
// SKIP LOCKED", " LOCK IN SHARE MODE NOWAIT" and so on, as the engine
// spells it. A mode the server lacks (SKIP LOCKED before MariaDB 10.6, say)
// is ErrLockUnsupported, never dropped.
//
// On SQLite it returns "" after making sure tx holds the database's write
// lock, which already excludes every other writer: every mode is then
// granted at once and no row is ever skipped. A read-only SQLite
// transaction cannot take it and gets ErrLockUnsupported.
//
// ctx governs taking the SQLite write lock; nothing is sent on the other
// engines.
func LockClause(ctx context.Context, tx *Tx, lock RowLockOptions) (string, error) {
	if tx == nil || tx.db == nil || tx.tx == nil {
		return "", fmt.Errorf("racefree: %s: nil transaction (row locks last until the transaction ends; outside one they would end with the statement)", lock.verb())
	}
	if lock.Wait.Timeout > 0 {
		return "", inputError(lock.verb(), "a clause cannot carry a wait Timeout (%v): lock the rows with LockRows, or use Wait.Try (NOWAIT)", lock.Wait.Timeout)
	}
	return tx.rowLockClause(ctx, lock)
}

func (tx *Tx) rowLockClause(ctx context.Context, lock RowLockOptions) (string, error) {
	d := tx.db.d
	verb := lock.verb()
	if err := lock.Wait.check(verb); err != nil {
		return "", err
	}
	if lock.SkipLocked && (lock.Wait.Try || lock.Wait.Timeout > 0) {
		return "", inputError(verb, "SkipLocked never waits: it cannot be combined with a Wait (%+v)", lock.Wait)
	}
	f := d.Features()
	if f.Has(dialect.SingleWriter) {
		if err := tx.takeWriteLock(ctx, verb, "row locks", lock.Wait); err != nil {
			return "", err
		}
		return "", nil
	}
	need := dialect.ForUpdate
	if lock.Share {
		need = dialect.ForShare
	}
	rl, ok := d.(dialect.RowLocker)
	if !ok || !f.Has(need) {
		what := "exclusive row locks"
		if lock.Share {
			what = "shared row locks"
		}
		return "", fmt.Errorf("racefree: %s: %w: %s on %s", verb, ErrLockUnsupported, what, d.Server())
	}
	wait := dialect.RowWaitForLock
	switch {
	case lock.Wait.Try:
		if !f.Has(dialect.NoWait) {
			return "", fmt.Errorf("racefree: %s: %w: NOWAIT on %s", verb, ErrLockUnsupported, d.Server())
		}
		wait = dialect.RowNoWait
	case lock.SkipLocked:
		if !f.Has(dialect.SkipLocked) {
			return "", fmt.Errorf("racefree: %s: %w: SKIP LOCKED on %s", verb, ErrLockUnsupported, d.Server())
		}
		wait = dialect.RowSkipLocked
	}
	return rl.RowLockClause(lock.Share, wait), nil
}

// takeWriteLock makes tx hold the database's write lock on a single-writer
// engine, waiting as w says: what row and table locks become there. what
// names them, for errors.
func (tx *Tx) takeWriteLock(ctx context.Context, verb, what string, w Wait) error {
	d := tx.db.d
	if tx.opts.ReadOnly {
		return fmt.Errorf("racefree: %s: %w: on %s %s are the database's write lock, which a read-only transaction cannot take",
			verb, ErrLockUnsupported, d.Server(), what)
	}
	wl, ok := d.(dialect.WriteLocker)
	if !ok {
		return fmt.Errorf("racefree: %s: %w: the %s dialect cannot take the write lock", verb, ErrLockUnsupported, d.Name())
	}
	err := tx.waitForLocks(ctx, w.dialect(), func(ctx context.Context) error {
		return wl.TakeWriteLock(ctx, lockingTx{tx}, lockTableName)
	})
	switch {
	case err == nil:
		return nil
	case tx.db.waitRanOut(err):
		return notGranted(verb+": the write lock", w, tx.db.classified(err))
	}
	return tx.db.wrapErr(verb+": take the write lock", err)
}

// lockRowsChunk is how many keys one LockRows statement carries: below
// every engine's parameter limit (SQLite's is 32766, PostgreSQL's 65535)
// and short enough that MySQL's optimizer keeps a range scan of the index
// instead of scanning (and locking) the whole table.
const lockRowsChunk = 500

// LockRows locks the rows of table whose column is one of keys, in one
// canonical order, and returns the keys it locked in that order. Keys are
// de-duplicated and sorted ascending, and each statement is
//
//	SELECT column FROM table WHERE column IN (…) ORDER BY column FOR UPDATE
//
// (one statement per 500 keys, in ascending chunks), so that the server
// takes the locks in ascending order. Two transactions that lock
// overlapping rows through LockRows wait for each other and never
// deadlock each other, whatever order their callers listed the keys in —
// the reason to use it instead of one SELECT … FOR UPDATE per key in
// argument order, which deadlocks under load (measured: thousands of
// deadlocks a minute on MariaDB; PostgreSQL waits deadlock_timeout, 1 s, on
// each). Lock rows through one column consistently, best the primary key:
// locks taken through another index are ordered by that index, and on
// MySQL/MariaDB a column without an index makes InnoDB lock every row it
// scans.
//
// A key with no row is missing from the result, as is, with SkipLocked, a
// row another transaction holds: compare len(locked) with the number of
// distinct keys. A held row not granted as lock.Wait allows — at once with
// Try (NOWAIT), within a Timeout — returns ErrLockNotAcquired, and rows
// locked before it stay locked until tx ends. The zero Wait waits until
// ctx ends, past MySQL's innodb_lock_wait_timeout.
//
// String keys are ordered by the column's collation inside a statement and
// by Go's byte order across chunks; use integer keys, or at most 500 string
// keys, where that could differ.
//
// On SQLite LockRows makes sure tx holds the database's write lock (see
// LockClause) and returns the keys that exist; it is refused in a read-only
// transaction. Bad input — no keys, an invalid or unknown table or column —
// returns an error matching ErrInvalidInput, with nothing locked.
func LockRows[K cmp.Ordered](ctx context.Context, tx *Tx, table, column string, keys []K, lock RowLockOptions) (_ []K, err error) {
	verb := lock.verb()
	if tx == nil || tx.db == nil || tx.tx == nil {
		return nil, fmt.Errorf("racefree: %s: nil transaction (row locks last until the transaction ends)", verb)
	}
	start := time.Now()
	defer func() { tx.db.observeLock(ctx, lockKindRows, table, start, err) }()
	if len(keys) == 0 {
		return nil, inputError(verb, "empty key list")
	}
	d := tx.db.d
	qt, err := d.Quote(table)
	if err != nil {
		return nil, fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
	}
	qc, err := d.QuoteIdent(column)
	if err != nil {
		return nil, fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
	}
	sorted := slices.Compact(slices.Sorted(slices.Values(keys)))
	clause, err := tx.rowLockClause(ctx, lock)
	if err != nil {
		return nil, err
	}
	if d.Features().Has(dialect.DoubleQuotedStrings) {
		// An unknown double-quoted column would be read as a string
		// literal and lock nothing, silently. The catalog read is cached
		// per DB.
		t, err := tx.db.table(ctx, tx.tx, verb, table)
		if err != nil {
			return nil, err
		}
		if _, ok := t.Column(column); !ok {
			return nil, inputError(verb, "table %s has no column %q", table, column)
		}
	}
	run := func(ctx context.Context) ([]K, error) {
		locked := make([]K, 0, len(sorted))
		for chunk := range slices.Chunk(sorted, lockRowsChunk) {
			var q strings.Builder
			q.WriteString("SELECT " + qc + " FROM " + qt + " WHERE " + qc + " IN (")
			args := make([]any, len(chunk))
			for i, k := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString(d.Placeholder(i + 1))
				args[i] = k
			}
			q.WriteString(") ORDER BY " + qc + clause)
			var err error
			if locked, err = scanKeys(ctx, tx, locked, q.String(), args); err != nil {
				return nil, err
			}
		}
		return locked, nil
	}
	var locked []K
	lockRows := func(ctx context.Context) error {
		var err error
		locked, err = run(ctx)
		return err
	}
	switch {
	case lock.Wait.Try && d.Features().Has(dialect.FailedStatementAbortsTx):
		// NOWAIT: a refused lock would abort the transaction; the
		// savepoint keeps tx usable, as the statement's error does by
		// itself elsewhere.
		err = tx.savepoint(ctx, lockRows)
	case lock.Wait.Try, lock.SkipLocked, d.Features().Has(dialect.SingleWriter):
		// The clause decides, or (SQLite) the write lock already held.
		err = lockRows(ctx)
	default:
		// The dialect bounds the wait (a Timeout), keeping tx usable when
		// it runs out, or waits again after the server's own lock timeout
		// (MySQL's innodb_lock_wait_timeout) until ctx ends.
		err = tx.waitForLocks(ctx, lock.Wait.dialect(), lockRows)
	}
	if err != nil {
		ce := tx.db.classified(err)
		switch {
		case tx.db.waitRanOut(err):
			return nil, notGranted(fmt.Sprintf("%s in %s", verb, table), lock.Wait, ce)
		case tx.db.undefined(err, true):
			return nil, fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, ce)
		}
		return nil, fmt.Errorf("racefree: %s in %s: %w", verb, table, ce)
	}
	return locked, nil
}

// scanKeys runs query in tx and appends its one column to dst.
func scanKeys[K any](ctx context.Context, tx *Tx, dst []K, query string, args []any) ([]K, error) {
	rows, err := tx.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k K
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		dst = append(dst, k)
	}
	return dst, rows.Err()
}
