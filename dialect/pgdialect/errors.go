package pgdialect

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/dialect"
)

// SQLSTATE codes racefree acts on.
const (
	codeUniqueViolation      = "23505"
	codeNotNullViolation     = "23502"
	codeForeignKeyViolation  = "23503"
	codeCheckViolation       = "23514"
	classIntegrity           = "23" // every integrity_constraint_violation
	codeSerializationFailure = "40001"
	codeCompletionUnknown    = "40003" // CockroachDB's ambiguous result
	codeDeadlockDetected     = "40P01"
	codeLockNotAvailable     = "55P03"
	codeUndefinedTable       = "42P01"
	codeUndefinedColumn      = "42703"
	codeQueryCanceled        = "57014"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03"
)

// Classify sorts a pgx error into a racefree class by its SQLSTATE, or by
// pgconn's own view of the failure (SafeToRetry, Timeout) when the server
// never answered.
func (d *Dialect) Classify(err error) *dialect.Error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return classifyPgError(pgErr, err)
	}
	if e := dialect.ClassifyCommon(err); e != nil && e.Class != dialect.ClassCanceled {
		return e
	}
	switch {
	case pgconn.SafeToRetry(err):
		return &dialect.Error{Class: dialect.ClassNotSent, Err: err}
	case pgconn.Timeout(err), dialect.ClassifyCommon(err) != nil:
		return &dialect.Error{Class: dialect.ClassCanceled, Err: err}
	case dialect.IsNetworkError(err):
		return &dialect.Error{Class: dialect.ClassConnection, Err: err}
	}
	return &dialect.Error{Class: dialect.ClassOther, Err: err}
}

func classifyPgError(pgErr *pgconn.PgError, err error) *dialect.Error {
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
		e.Class = dialect.ClassLockTimeout
	case code == codeQueryCanceled:
		e.Class = dialect.ClassCanceled
	case strings.HasPrefix(code, "08"), code == codeAdminShutdown, code == codeCrashShutdown, code == codeCannotConnectNow,
		code == codeCompletionUnknown: // the statement may or may not have taken effect
		e.Class = dialect.ClassConnection
	}
	return e
}
