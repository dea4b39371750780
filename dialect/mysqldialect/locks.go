package mysqldialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
)

var (
	_ dialect.LockWaiter       = (*Dialect)(nil)
	_ dialect.LockTabler       = (*Dialect)(nil)
	_ dialect.SessionLocker    = (*Dialect)(nil)
	_ dialect.RowLocker        = (*Dialect)(nil)
	_ dialect.TableLocker      = (*Dialect)(nil)
	_ dialect.UndefinedChecker = (*Dialect)(nil)
)

// WaitForLocks bounds a wait with innodb_lock_wait_timeout, set for the
// session around fn and put back afterwards. It counts whole seconds, so a
// Timeout is rounded up; Try is 0, which MariaDB 10.3 and later take as
// "refuse at once", and MySQL and TiDB raise to 1 s. A lock wait timeout
// (1205) rolls back only the statement, so the transaction stays usable.
//
// The zero Wait waits until ctx ends: when the server's own
// innodb_lock_wait_timeout (50 s by default) ends the wait, fn runs again
// — unless innodb_rollback_on_timeout is on, which rolls back the whole
// transaction, so that fn would run outside it.
func (d *Dialect) WaitForLocks(ctx context.Context, tx dialect.LockTx, w dialect.Wait, fn func(context.Context) error) error {
	if w.Bounded() {
		secs := 0
		if !w.Try {
			secs = int((w.Timeout + time.Second - 1) / time.Second)
		}
		return d.withLockWaitTimeout(ctx, tx, secs, fn)
	}
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ce := d.Classify(err); ce.Class != dialect.ClassLockNotAcquired || ctx.Err() != nil || d.rollbackOnTimeout(ctx, tx) {
			return err
		}
	}
}

// withLockWaitTimeout runs fn with innodb_lock_wait_timeout set to secs
// and puts the session's value back afterwards, even if ctx ended. A
// timeout is returned classified, so that it matches ErrLockNotAcquired.
func (d *Dialect) withLockWaitTimeout(ctx context.Context, q dialect.Querier, secs int, fn func(context.Context) error) error {
	if _, err := q.Exec(ctx, "SET @racefree_lwt = @@SESSION.innodb_lock_wait_timeout, SESSION innodb_lock_wait_timeout = "+
		strconv.Itoa(secs)); err != nil {
		return err
	}
	err := fn(ctx)
	if ce := d.Classify(err); ce != nil && ce.Class == dialect.ClassLockNotAcquired {
		err = ce
	}
	if _, rerr := q.Exec(context.WithoutCancel(ctx), "SET SESSION innodb_lock_wait_timeout = @racefree_lwt"); rerr != nil {
		return errors.Join(err, fmt.Errorf("mysqldialect: restore innodb_lock_wait_timeout: %w", rerr))
	}
	return err
}

// rollbackOnTimeout reads innodb_rollback_on_timeout; reading a variable
// takes no snapshot. An error counts as "on", the safe answer.
func (d *Dialect) rollbackOnTimeout(ctx context.Context, q dialect.Querier) bool {
	var on string
	if err := q.QueryRow(ctx, "SELECT @@innodb_rollback_on_timeout").Scan(&on); err != nil {
		return true
	}
	return on == "1" || strings.EqualFold(on, "ON")
}

// CreateLockTableSQL is the lock table, in InnoDB.
func (d *Dialect) CreateLockTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + table +
		" (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, acquired BIGINT NOT NULL DEFAULT 0)" +
		" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
}

// LockRowSQL writes the lock's row with INSERT … ON DUPLICATE KEY UPDATE,
// which takes the row's exclusive lock directly: INSERT IGNORE followed by
// SELECT … FOR UPDATE would take a shared lock first, and two sessions
// upgrading shared locks deadlock. A row lock belongs to the transaction;
// GET_LOCK, which belongs to the session and survives the transaction, is
// not used.
func (d *Dialect) LockRowSQL(table string) string {
	return "INSERT INTO " + table + " (id, name, acquired) VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE acquired = acquired + 1"
}

// getLockForever is the GET_LOCK timeout for "until ctx ends": a year,
// since negative timeouts mean "forever" only on some servers (TiDB caps
// it at an hour and waits again). ctx ending kills the statement, which
// ends the wait.
const getLockForever = 365 * 24 * 3600

// LockSession calls GET_LOCK, which answers 1 (granted), 0 (timed out) or
// NULL (an error, such as being killed). Names longer than 64 characters,
// or not valid UTF-8, are hashed to fit (internal/lockkey).
//
// TiDB's GET_LOCK inserts the name into a table in a pessimistic
// transaction of its own; when a write conflict keeps it from taking the
// row lock it gives up with "pessimistic lock retry limit reached" (a
// serialization failure), having rolled that transaction back: the
// session holds nothing, so LockSession asks again within the wait, and a
// Try reports the lock taken by another. TiDB's shortest GET_LOCK wait is
// one second, so there a Try, and any Timeout, wait at least that long.
func (d *Dialect) LockSession(ctx context.Context, q dialect.Querier, k dialect.LockKey, w dialect.Wait) (bool, error) {
	name := lockkey.MySQLName(k.Name)
	timeout := float64(getLockForever)
	switch {
	case w.Try:
		timeout = 0
	case w.Timeout > 0:
		timeout = w.Timeout.Seconds()
	}
	deadline := time.Now().Add(w.Timeout)
	for {
		var got sql.NullInt64
		err := q.QueryRow(ctx, "SELECT GET_LOCK(?, ?)", name, timeout).Scan(&got)
		switch {
		case err == nil && !got.Valid:
			return false, errors.New("mysqldialect: GET_LOCK returned NULL")
		case err == nil:
			return got.Int64 == 1, nil
		case d.Classify(err).Class != dialect.ClassSerialization || ctx.Err() != nil:
			return false, err
		case w.Try:
			return false, nil
		case w.Timeout > 0:
			rest := time.Until(deadline)
			if rest <= 0 {
				return false, nil
			}
			timeout = rest.Seconds()
		}
	}
}

// SessionLockHeld asks IS_USED_LOCK whether this connection holds the
// lock. (From another session TiDB answers 1 rather than the holder's
// connection id; from the holder's own, its id.)
func (d *Dialect) SessionLockHeld(ctx context.Context, q dialect.Querier, k dialect.LockKey) (bool, error) {
	var held bool
	err := q.QueryRow(ctx, "SELECT COALESCE(IS_USED_LOCK(?) = CONNECTION_ID(), FALSE)", lockkey.MySQLName(k.Name)).Scan(&held)
	return held, err
}

// UnlockSession calls RELEASE_LOCK, which answers 1 when it released the
// lock, 0 when another session holds it and NULL when nobody does.
func (d *Dialect) UnlockSession(ctx context.Context, q dialect.Querier, k dialect.LockKey) (bool, error) {
	var released sql.NullBool
	err := q.QueryRow(ctx, "SELECT RELEASE_LOCK(?) = 1", lockkey.MySQLName(k.Name)).Scan(&released)
	return released.Valid && released.Bool, err
}

// RowLockClause renders FOR UPDATE, or a shared lock: FOR SHARE on MySQL
// 8, which needs it for NOWAIT and SKIP LOCKED, and LOCK IN SHARE MODE on
// MariaDB, which has no FOR SHARE; then NOWAIT or SKIP LOCKED.
func (d *Dialect) RowLockClause(share bool, wait dialect.RowWait) string {
	clause := " FOR UPDATE"
	switch {
	case share && d.flavor == MySQL:
		clause = " FOR SHARE"
	case share:
		clause = " LOCK IN SHARE MODE"
	}
	switch wait {
	case dialect.RowNoWait:
		clause += " NOWAIT"
	case dialect.RowSkipLocked:
		clause += " SKIP LOCKED"
	}
	return clause
}

// LockTableSQL returns a locking scan of the whole table, not LOCK TABLES:
// LOCK TABLES cannot be used, since it commits the open
// transaction and lasts until UNLOCK TABLES, not until the transaction
// ends. A write lock is instead SELECT COUNT(*) FROM table FOR UPDATE at
// REPEATABLE READ or SERIALIZABLE, which puts a next-key lock on every row
// and gap of the table: no other session can insert, update, delete or
// lock-read until the transaction ends, and plain reads go on. It costs a
// lock per row, so it is for small tables. At READ COMMITTED InnoDB takes
// no gap locks, and inserts would get through: refused, as is a
// transaction whose level is unknown. An exclusive lock is refused too:
// InnoDB's plain reads never wait for a lock.
func (d *Dialect) LockTableSQL(ctx context.Context, q dialect.Querier, quotedTable string, exclusive bool, iso sql.IsolationLevel, known bool) (string, error) {
	if exclusive {
		return "", fmt.Errorf("%w: InnoDB's plain reads never wait for a lock, and LOCK TABLES would commit the transaction", dialect.ErrLockUnsupported)
	}
	if !known {
		return "", fmt.Errorf("%w: the transaction's isolation level is unknown (pass its options to WrapTx); "+
			"the lock needs REPEATABLE READ or SERIALIZABLE", dialect.ErrLockUnsupported)
	}
	if iso == sql.LevelDefault {
		level, err := d.CurrentIsolation(ctx, q)
		if err != nil {
			return "", fmt.Errorf("mysqldialect: read the isolation level: %w", err)
		}
		iso = level
	}
	if iso != sql.LevelRepeatableRead && iso != sql.LevelSerializable {
		return "", fmt.Errorf("%w: at %v InnoDB takes no gap locks, so other sessions could still insert; use REPEATABLE READ or SERIALIZABLE",
			dialect.ErrLockUnsupported, iso)
	}
	return "SELECT COUNT(*) FROM " + quotedTable + " FOR UPDATE", nil
}

// UndefinedTable reports whether err is MySQL's error 1146,
// ER_NO_SUCH_TABLE.
func (d *Dialect) UndefinedTable(err error) bool { return hasNumber(err, erNoSuchTable) }

// UndefinedColumn reports whether err is MySQL's error 1054,
// ER_BAD_FIELD_ERROR.
func (d *Dialect) UndefinedColumn(err error) bool { return hasNumber(err, erBadFieldError) }

func hasNumber(err error, number uint16) bool {
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == number
}
