package mysqldialect

import (
	"errors"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/racefree/racefree/dialect"
)

// Server error numbers racefree acts on.
const (
	erDupKey            = 1022
	erDupEntry          = 1062
	erDupEntryWithKey   = 1586
	erCheckRead         = 1020 // MariaDB: record changed since last read (snapshot isolation)
	erLockWaitTimeout   = 1205
	erLockDeadlock      = 1213
	erLockNowait        = 3572
	erNoSuchTable       = 1146
	erBadFieldError     = 1054 // Unknown column 'c' in 'field list'
	erQueryInterrupted  = 1317
	erQueryTimeout      = 3024 // MySQL max_execution_time
	erStatementTimeout  = 1969 // MariaDB max_statement_time
	erServerShutdown    = 1053
	erConnectionKilled  = 1927
	erClientIdleTimeout = 4031
	erServerGone        = 2006
	erServerLost        = 2013
	erConCount          = 1040 // Too many connections (max_connections)
	erTooManyUserConns  = 1203 // User already has more than 'max_user_connections' active connections
	erUserLimitReached  = 1226 // User has exceeded a resource limit (max_user_connections, connections per hour)
	erUnknown           = 1105 // what TiDB sends for errors without a code of their own

	// TiDB's own numbers (docs.pingcap.com/tidb/stable/error-codes). Each
	// means the transaction was rolled back, or must be, and may succeed
	// if run again from the start.
	tidbWriteConflict       = 9007 // optimistic write conflict at COMMIT
	tidbForUpdateCantRetry  = 8002 // conflict in an optimistic transaction that locked rows
	tidbWriteConflictInTiDB = 8005 // "Write conflict, txnStartTS is stale"
	tidbTxnRetryable        = 8022 // "KV error safe to retry"
	tidbInfoSchemaChanged   = 8028 // a table the transaction used changed under it (DDL)

	erBadNull           = 1048 // Column 'c' cannot be null
	erNoDefaultForField = 1364 // Field 'c' doesn't have a default value (strict mode)
	erWarnNullToNotNull = 1263 // NULL supplied to NOT NULL column 'c' (multi-row insert, strict mode)
	erNoReferencedRow   = 1216
	erRowIsReferenced   = 1217
	erRowIsReferenced2  = 1451
	erNoReferencedRow2  = 1452
	erCheckViolated     = 3819 // MySQL 8: Check constraint 'name' is violated.
	erConstraintFailed  = 4025 // MariaDB: CONSTRAINT `name` failed for `db`.`t`
)

// tidbLockRetryLimit is the message of the error TiDB returns, with the
// catch-all number 1105, when a statement of a pessimistic transaction hit
// a write conflict more often than pessimistic-txn.max-retry-count allows
// (256 by default): contention, which running the transaction again gets
// past. The message is the only place TiDB says so.
const tidbLockRetryLimit = "pessimistic lock retry limit reached"

// Classify sorts a go-sql-driver/mysql error into a racefree class by its
// error number. MySQL has no field for the violated index, so for duplicate
// keys the index name is taken from the message, the only place the server
// puts it; likewise TiDB's pessimistic lock retry limit, which comes with
// the catch-all number 1105.
func (d *Dialect) Classify(err error) *dialect.Error {
	if err == nil {
		return nil
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return classifyMySQLError(myErr, err, d.flavor != MariaDB)
	}
	if e := dialect.ClassifyCommon(err); e != nil {
		return e
	}
	switch {
	case dialect.IsMisaddressed(err):
		return &dialect.Error{Class: dialect.ClassOther, Err: err} // no wait fixes a wrong name
	case dialect.IsUnreachable(err):
		// The connection was never opened (refused, dial failed): nothing
		// was sent.
		return &dialect.Error{Class: dialect.ClassUnavailable, Err: err}
	case isBadConnNoWrite(err):
		return &dialect.Error{Class: dialect.ClassNotSent, Err: err}
	case errors.Is(err, mysql.ErrInvalidConn), dialect.IsNetworkError(err):
		return &dialect.Error{Class: dialect.ClassConnection, Err: err}
	}
	return &dialect.Error{Class: dialect.ClassOther, Err: err}
}

func classifyMySQLError(myErr *mysql.MySQLError, err error, tablePrefix bool) *dialect.Error {
	e := &dialect.Error{Code: strconv.Itoa(int(myErr.Number)), Err: err}
	switch myErr.Number {
	case erDupEntry, erDupKey, erDupEntryWithKey:
		e.Class = dialect.ClassUniqueViolation
		e.Constraint = duplicateKeyName(myErr.Message, tablePrefix)
	case erBadNull, erNoDefaultForField, erWarnNullToNotNull:
		e.Class = dialect.ClassNotNullViolation
		if c := quoted(myErr.Message, '\''); c != "" {
			e.Columns = []string{c}
		}
	case erNoReferencedRow, erRowIsReferenced, erRowIsReferenced2, erNoReferencedRow2:
		e.Class = dialect.ClassForeignKeyViolation
		e.Constraint = after(myErr.Message, "CONSTRAINT `", '`')
	case erCheckViolated:
		e.Class = dialect.ClassCheckViolation
		e.Constraint = quoted(myErr.Message, '\'')
	case erConstraintFailed:
		e.Class = dialect.ClassCheckViolation
		e.Constraint = after(myErr.Message, "CONSTRAINT `", '`')
	case erLockDeadlock:
		e.Class = dialect.ClassDeadlock
	case erCheckRead, tidbWriteConflict, tidbForUpdateCantRetry, tidbWriteConflictInTiDB, tidbTxnRetryable, tidbInfoSchemaChanged:
		e.Class = dialect.ClassSerialization
	case erUnknown:
		if strings.Contains(myErr.Message, tidbLockRetryLimit) {
			e.Class = dialect.ClassSerialization
		}
	case erLockWaitTimeout, erLockNowait:
		e.Class = dialect.ClassLockNotAcquired
	case erQueryInterrupted, erQueryTimeout, erStatementTimeout:
		e.Class = dialect.ClassCanceled
	case erConCount, erTooManyUserConns, erUserLimitReached:
		// Turned away at login: no statement was sent.
		e.Class = dialect.ClassUnavailable
	case erServerShutdown, erConnectionKilled, erClientIdleTimeout, erServerGone, erServerLost:
		// The session ended under a statement, which may have run. (1053
		// also turns a login away while the server shuts down; as it
		// cannot be told apart here, it stays "may have run".)
		e.Class = dialect.ClassConnection
	}
	return e
}

// duplicateKeyName extracts the index name from "Duplicate entry 'x' for key
// 'name'". MySQL 8 and TiDB write 'table.name' (tablePrefix); MariaDB
// writes the index name alone, which may contain a dot. It returns "" when
// the message has another shape.
func duplicateKeyName(msg string, tablePrefix bool) string {
	const marker = "for key '"
	i := strings.LastIndex(msg, marker)
	if i < 0 || !strings.HasSuffix(msg, "'") {
		return ""
	}
	name := msg[i+len(marker) : len(msg)-1]
	if j := strings.LastIndexByte(name, '.'); tablePrefix && j >= 0 {
		name = name[j+1:]
	}
	return name
}

// quoted returns the text between the first pair of q in msg, or "".
func quoted(msg string, q byte) string {
	i := strings.IndexByte(msg, q)
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(msg[i+1:], q)
	if j < 0 {
		return ""
	}
	return msg[i+1 : i+1+j]
}

// after returns the text between marker and the next end in msg, or "".
func after(msg, marker string, end byte) string {
	i := strings.Index(msg, marker)
	if i < 0 {
		return ""
	}
	rest := msg[i+len(marker):]
	j := strings.IndexByte(rest, end)
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// badConnNoWrite is the message of go-sql-driver/mysql's unexported
// errBadConnNoWrite: a write that failed before a byte of it was sent. The
// driver turns it into driver.ErrBadConn on a statement, but not where a
// new connection's handshake fails, and database/sql then returns it as it
// is from DB.Conn and BeginTx (seen under a TCP proxy that resets
// connections): nothing was sent, so it is as safe to retry as ErrBadConn.
const badConnNoWrite = "bad connection"

// isBadConnNoWrite reports whether the innermost error of err's chain is
// the driver's errBadConnNoWrite, which only its message identifies.
func isBadConnNoWrite(err error) bool {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error() == badConnNoWrite
		}
		err = next
	}
}
