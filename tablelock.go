package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/racefree/racefree/dialect"
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
//   - SQLite: LockTableWrite takes the database's write lock (see
//     LockClause), which excludes every other writer of every table.
//     LockTableExclusive is ErrLockUnsupported: readers of a WAL database
//     are never blocked.
//
// Bad input — an invalid or unknown table, an unknown mode — returns an
// error matching ErrInvalidInput.
func LockTable(ctx context.Context, tx *Tx, table string, mode TableLockMode, opts LockOptions) error {
	verb := "lock table"
	if tx == nil || tx.db == nil || tx.tx == nil {
		return fmt.Errorf("racefree: %s: nil transaction (a table lock lasts until the transaction ends)", verb)
	}
	if mode != LockTableWrite && mode != LockTableExclusive {
		return inputError(verb, "unknown TableLockMode %d", mode)
	}
	d := tx.db.d
	qt, err := d.Quote(table)
	if err != nil {
		return fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
	}
	verb = "lock table " + table + " for " + mode.String()
	if d.Name() != "sqlite" && !d.Features().Has(dialect.TableLocks) {
		// CockroachDB has no LOCK TABLE; TiDB takes no gap locks, so a
		// locking scan would not keep inserts out.
		return fmt.Errorf("racefree: %s: %w: %s has no table locks; use LockNamed with the table's name as a lock every writer takes",
			verb, ErrLockUnsupported, d.Server())
	}
	switch d.Name() {
	case "postgres":
		return tx.lockTablePG(ctx, verb, qt, mode, opts)
	case "mysql":
		return tx.lockTableMySQL(ctx, verb, table, qt, mode, opts)
	}
	if mode == LockTableExclusive {
		return fmt.Errorf("racefree: %s: %w: SQLite cannot keep readers out inside a transaction (WAL readers never wait); LockTableWrite excludes every writer",
			verb, ErrLockUnsupported)
	}
	if tx.opts.ReadOnly {
		return fmt.Errorf("racefree: %s: %w: a read-only SQLite transaction cannot take the write lock", verb, ErrLockUnsupported)
	}
	if _, err := tx.tx.Exec(ctx, "SELECT 1 FROM "+qt+" WHERE 0"); err != nil {
		return tableLockErr(tx.db, verb, err)
	}
	if opts.Try || opts.Timeout > 0 {
		ms := max(opts.Timeout.Milliseconds(), 1)
		if opts.Try {
			ms = 0
		}
		err = tx.sqliteWithBusyTimeout(ctx, ms, tx.sqliteTakeWriteLock)
		if err != nil {
			if ce := tx.db.d.Classify(err); ce.Class == dialect.ClassBusy && ce.Code != sqliteBusySnapshot {
				if opts.Try {
					return fmt.Errorf("racefree: %s: %w", verb, ErrLockNotAcquired)
				}
				return lockTimeoutErr("lock table", table, ce)
			}
		}
		return tableLockErr(tx.db, verb, err)
	}
	return tableLockErr(tx.db, verb, tx.sqliteTakeWriteLock(ctx))
}

func (tx *Tx) lockTablePG(ctx context.Context, verb, qt string, mode TableLockMode, opts LockOptions) error {
	stmt := "LOCK TABLE " + qt + " IN SHARE ROW EXCLUSIVE MODE"
	if mode == LockTableExclusive {
		stmt = "LOCK TABLE " + qt + " IN ACCESS EXCLUSIVE MODE"
	}
	run := func(ctx context.Context) error {
		_, err := tx.tx.Exec(ctx, stmt)
		return err
	}
	var err error
	switch {
	case opts.Try:
		stmt += " NOWAIT"
		err = tx.savepoint(ctx, run)
	case opts.Timeout > 0:
		err = tx.pgWithLockTimeout(ctx, opts.Timeout, run)
	default:
		err = run(ctx)
	}
	if err != nil && opts.Try && errors.Is(tx.db.d.Classify(err), ErrLockTimeout) {
		return fmt.Errorf("racefree: %s: %w", verb, ErrLockNotAcquired)
	}
	return tableLockErr(tx.db, verb, err)
}

func (tx *Tx) lockTableMySQL(ctx context.Context, verb, table, qt string, mode TableLockMode, opts LockOptions) error {
	if mode == LockTableExclusive {
		return fmt.Errorf("racefree: %s: %w: InnoDB's plain reads never wait for a lock, and LOCK TABLES would commit the transaction", verb, ErrLockUnsupported)
	}
	if tx.opts.ReadOnly {
		return fmt.Errorf("racefree: %s: %w: a read-only transaction cannot take write locks", verb, ErrLockUnsupported)
	}
	level := tx.opts.Isolation
	if !tx.known {
		return fmt.Errorf("racefree: %s: %w: the transaction's isolation level is unknown (pass its options to WrapTx); "+
			"the lock needs REPEATABLE READ or SERIALIZABLE", verb, ErrLockUnsupported)
	}
	if level == sql.LevelDefault {
		// The session's level applies; reading a variable takes no snapshot.
		var s string
		if err := tx.tx.QueryRow(ctx, "SELECT @@SESSION.tx_isolation").Scan(&s); err != nil {
			if err := tx.tx.QueryRow(ctx, "SELECT @@SESSION.transaction_isolation").Scan(&s); err != nil {
				return tx.db.wrapErr(verb+": read the isolation level", err)
			}
		}
		switch strings.ToUpper(strings.ReplaceAll(s, "_", "-")) {
		case "REPEATABLE-READ":
			level = sql.LevelRepeatableRead
		case "SERIALIZABLE":
			level = sql.LevelSerializable
		}
	}
	if level != sql.LevelRepeatableRead && level != sql.LevelSerializable {
		return fmt.Errorf("racefree: %s: %w: at %v InnoDB takes no gap locks, so other sessions could still insert; use REPEATABLE READ or SERIALIZABLE",
			verb, ErrLockUnsupported, level)
	}
	stmt := "SELECT COUNT(*) FROM " + qt + " FOR UPDATE"
	run := func(ctx context.Context) error {
		var n int64
		return tx.tx.QueryRow(ctx, stmt).Scan(&n)
	}
	if opts.Try || opts.Timeout > 0 {
		secs := 0
		if !opts.Try {
			secs = int((opts.Timeout + 999_999_999) / 1_000_000_000)
		}
		err := tx.mysqlWithLockWait(ctx, secs, run)
		if err != nil && errors.Is(tx.db.d.Classify(err), ErrLockTimeout) {
			if opts.Try {
				return fmt.Errorf("racefree: %s: %w", verb, ErrLockNotAcquired)
			}
			return lockTimeoutErr("lock table", table, tx.db.d.Classify(err))
		}
		return tableLockErr(tx.db, verb, err)
	}
	return tableLockErr(tx.db, verb, run(ctx))
}

// tableLockErr classifies err, turning an unknown table into
// ErrInvalidInput.
func tableLockErr(db *DB, verb string, err error) error {
	if err == nil {
		return nil
	}
	ce := db.d.Classify(err)
	if db.isUndefinedTable(err) || strings.Contains(ce.Error(), "no such table") {
		return fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, ce)
	}
	return fmt.Errorf("racefree: %s: %w", verb, ce)
}
