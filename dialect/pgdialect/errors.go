package pgdialect

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/dialect"
)

// SQLSTATE codes racefree acts on.
const (
	codeUniqueViolation       = "23505"
	codeNotNullViolation      = "23502"
	codeForeignKeyViolation   = "23503"
	codeCheckViolation        = "23514"
	classIntegrity            = "23" // every integrity_constraint_violation
	codeSerializationFailure  = "40001"
	codeCompletionUnknown     = "40003" // CockroachDB's ambiguous result
	codeDeadlockDetected      = "40P01"
	codeLockNotAvailable      = "55P03"
	codeUndefinedTable        = "42P01"
	codeUndefinedColumn       = "42703"
	codeQueryCanceled         = "57014"
	codeAdminShutdown         = "57P01"
	codeCrashShutdown         = "57P02"
	codeCannotConnectNow      = "57P03"
	codeTooManyConnections    = "53300"
	classConnectionException  = "08"
	classOperatorIntervention = "57"
)

// Classify sorts a pgx error into a racefree class by its SQLSTATE, or by
// what pgconn says about the failure when the server never answered.
//
// pgconn's SafeToRetry is trusted except for its "conn closed" error
// (pgconn.ErrConnClosed): pgx 5 returns that one not only when the
// connection was closed before the call, but also when a read failed after
// the statement was sent (MultiResultReader.NextResult ignores the failed
// peek, which closes the connection, then reports the closed connection):
// a COMMIT cut while in flight comes back as "conn closed", SafeToRetry
// true. The statement may have run, so it is ClassConnection. (Through
// database/sql a connection pgx knew was closed before the call is
// driver.ErrBadConn, which database/sql itself retries on another
// connection.)
func (d *Dialect) Classify(err error) *dialect.Error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return classifyPgError(pgErr, err, atConnect(err))
	}
	if e := dialect.ClassifyCommon(err); e != nil && e.Class != dialect.ClassCanceled {
		return e
	}
	switch {
	case errors.Is(err, pgconn.ErrConnClosed):
		return &dialect.Error{Class: dialect.ClassConnection, Err: err}
	case pgconn.Timeout(err), dialect.ClassifyCommon(err) != nil:
		return &dialect.Error{Class: dialect.ClassCanceled, Err: err}
	case dialect.IsMisaddressed(err):
		return &dialect.Error{Class: dialect.ClassOther, Err: err} // no wait fixes a wrong name
	case pgconn.SafeToRetry(err):
		return &dialect.Error{Class: dialect.ClassNotSent, Err: err}
	case dialect.IsUnreachable(err), atConnect(err) && dialect.IsNetworkError(err):
		// No session was opened (refused, or dropped while logging in, as
		// a restarting server does): nothing was sent.
		return &dialect.Error{Class: dialect.ClassUnavailable, Err: err}
	case dialect.IsNetworkError(err):
		return &dialect.Error{Class: dialect.ClassConnection, Err: err}
	}
	return &dialect.Error{Class: dialect.ClassOther, Err: err}
}

// atConnect reports whether err is from opening a connection (pgconn's
// ConnectError): then no statement was sent.
func atConnect(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// classifyPgError classifies a server error; connecting tells that it came
// while the session was being opened, before any statement was sent.
func classifyPgError(pgErr *pgconn.PgError, err error, connecting bool) *dialect.Error {
	e := &dialect.Error{Code: pgErr.Code, Err: err}
	switch code := pgErr.Code; {
	case code == codeUniqueViolation:
		e.Class = dialect.ClassUniqueViolation
		e.Constraint = pgErr.ConstraintName
	case code == codeNotNullViolation:
		e.Class = dialect.ClassNotNullViolation
		if pgErr.ColumnName != "" {
			e.Columns = []string{pgErr.ColumnName}
		}
	case code == codeForeignKeyViolation:
		e.Class = dialect.ClassForeignKeyViolation
		e.Constraint = pgErr.ConstraintName
	case code == codeCheckViolation:
		e.Class = dialect.ClassCheckViolation
		e.Constraint = pgErr.ConstraintName
	case strings.HasPrefix(code, classIntegrity):
		e.Class = dialect.ClassIntegrityViolation
		e.Constraint = pgErr.ConstraintName
	case code == codeSerializationFailure:
		e.Class = dialect.ClassSerialization
	case code == codeDeadlockDetected:
		e.Class = dialect.ClassDeadlock
	case code == codeLockNotAvailable:
		e.Class = dialect.ClassLockNotAcquired
	case code == codeQueryCanceled:
		e.Class = dialect.ClassCanceled
	case code == codeTooManyConnections, code == codeCannotConnectNow,
		connecting && (strings.HasPrefix(code, classConnectionException) || strings.HasPrefix(code, classOperatorIntervention)):
		// Turned away at login: too many connections, or starting up or
		// shutting down. No statement was sent.
		e.Class = dialect.ClassUnavailable
	case strings.HasPrefix(code, classConnectionException), code == codeAdminShutdown, code == codeCrashShutdown,
		code == codeCompletionUnknown:
		// The session ended under a statement, which may have run (even a
		// COMMIT: the server may end the session after committing and
		// before answering).
		e.Class = dialect.ClassConnection
	}
	return e
}
