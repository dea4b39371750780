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
	erDupKey             = 1022
	erDupEntry           = 1062
	erDupEntryWithKey    = 1586
	erCheckRead          = 1020 // MariaDB: record changed since last read (snapshot isolation)
	erLockWaitTimeout    = 1205
	erLockDeadlock       = 1213
	erLockNowait         = 3572
	erQueryInterrupted   = 1317
	erQueryTimeout       = 3024 // MySQL max_execution_time
	erStatementTimeout   = 1969 // MariaDB max_statement_time
	erServerShutdown     = 1053
	erConnectionKilled   = 1927
	erClientIdleTimeout  = 4031
	erServerGone         = 2006
	erServerLost         = 2013
	tidbWriteConflict    = 9007
	tidbWriteConflictOpt = 8002
	tidbTxnRetryable     = 8022
)

// Classify sorts a go-sql-driver/mysql error into a racefree class by its
// error number. MySQL has no field for the violated index, so for duplicate
// keys the index name is taken from the message, the only place the server
// puts it.
func (d *Dialect) Classify(err error) *dialect.Error {
	if err == nil {
		return nil
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return classifyMySQLError(myErr, err)
	}
	if e := dialect.ClassifyCommon(err); e != nil {
		return e
	}
	if errors.Is(err, mysql.ErrInvalidConn) || dialect.IsNetworkError(err) {
		return &dialect.Error{Class: dialect.ClassConnection, Err: err}
	}
	return &dialect.Error{Class: dialect.ClassOther, Err: err}
}

func classifyMySQLError(myErr *mysql.MySQLError, err error) *dialect.Error {
	e := &dialect.Error{Code: strconv.Itoa(int(myErr.Number)), Err: err}
	switch myErr.Number {
	case erDupEntry, erDupKey, erDupEntryWithKey:
		e.Class = dialect.ClassUniqueViolation
		e.Constraint = duplicateKeyName(myErr.Message)
	case erLockDeadlock:
		e.Class = dialect.ClassDeadlock
	case erCheckRead, tidbWriteConflict, tidbWriteConflictOpt, tidbTxnRetryable:
		e.Class = dialect.ClassSerialization
	case erLockWaitTimeout, erLockNowait:
		e.Class = dialect.ClassLockTimeout
	case erQueryInterrupted, erQueryTimeout, erStatementTimeout:
		e.Class = dialect.ClassCanceled
	case erServerShutdown, erConnectionKilled, erClientIdleTimeout, erServerGone, erServerLost:
		e.Class = dialect.ClassConnection
	}
	return e
}

// duplicateKeyName extracts the index name from "Duplicate entry 'x' for key
// 'name'" (MySQL 8 writes 'table.name'). It returns "" when the message has
// another shape.
func duplicateKeyName(msg string) string {
	const marker = "for key '"
	i := strings.LastIndex(msg, marker)
	if i < 0 || !strings.HasSuffix(msg, "'") {
		return ""
	}
	name := msg[i+len(marker) : len(msg)-1]
	if j := strings.LastIndexByte(name, '.'); j >= 0 {
		name = name[j+1:]
	}
	return name
}
