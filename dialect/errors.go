package dialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"
)

// Class is the kind of a database error, independent of the engine.
type Class uint8

// The error classes. The zero value, ClassOther, is any error racefree has no
// special handling for.
const (
	// ClassOther is any error not listed below: syntax errors, permission
	// errors, and errors that are not from the database.
	ClassOther Class = iota
	// ClassUniqueViolation is a unique or primary key violation. The
	// statement failed; on PostgreSQL the transaction is aborted too.
	ClassUniqueViolation
	// ClassSerialization is a serialization failure (PostgreSQL 40001, TiDB
	// write conflicts, MariaDB "record has changed"). The transaction was
	// rolled back and may succeed if run again from the start.
	ClassSerialization
	// ClassDeadlock means the server chose this transaction as a deadlock
	// victim and rolled it back (PostgreSQL 40P01, MySQL 1213).
	ClassDeadlock
	// ClassLockNotAcquired means a lock (a row, table, named or advisory
	// lock) was not granted in time or at once: a lock timeout, a NOWAIT
	// refusal (PostgreSQL 55P03, MySQL 1205 and 3572), or a bound that
	// racefree or the dialect set and saw run out. On MySQL/MariaDB 1205
	// rolls back only the statement: the transaction is still open.
	ClassLockNotAcquired
	// ClassBusy is SQLite's SQLITE_BUSY or SQLITE_LOCKED: another connection
	// held the database lock longer than the busy timeout.
	ClassBusy
	// ClassNotSent means the connection failed before the statement reached
	// the server, so it certainly did not run (driver.ErrBadConn, pgconn's
	// SafeToRetry). Running it again is safe.
	ClassNotSent
	// ClassConnection means the connection broke while the statement was in
	// flight: it may or may not have run.
	ClassConnection
	// ClassCommitUnknown means COMMIT was sent but no answer came back: the
	// transaction may or may not have been committed. Only the transaction
	// runner assigns this class; it is never retried.
	ClassCommitUnknown
	// ClassCanceled means the statement was canceled: its context ended, or
	// a statement timeout fired.
	ClassCanceled
	// ClassNotNullViolation: a NULL, or no value and no default, for a NOT
	// NULL column (PostgreSQL 23502, MySQL 1048/1364, SQLite
	// SQLITE_CONSTRAINT_NOTNULL). Error.Columns names the column.
	ClassNotNullViolation
	// ClassForeignKeyViolation: a row refers to a row that does not exist,
	// or is referred to by one that does (PostgreSQL 23503, MySQL
	// 1451/1452, SQLite SQLITE_CONSTRAINT_FOREIGNKEY).
	ClassForeignKeyViolation
	// ClassCheckViolation: a CHECK constraint failed (PostgreSQL 23514,
	// MySQL 3819, MariaDB 4025, SQLite SQLITE_CONSTRAINT_CHECK).
	ClassCheckViolation
	// ClassIntegrityViolation is any other constraint the data broke: an
	// exclusion constraint (PostgreSQL 23P01), a RESTRICT rule, a
	// constraint trigger. See also ErrIntegrity, which matches every
	// integrity class.
	ClassIntegrityViolation
	// ClassUnavailable means no session could be opened: the server
	// refused the connection or could not be reached (connection refused,
	// a dial timeout, a name that does not resolve for now), or it turned
	// the session away at login because it is starting up, shutting down
	// or has too many connections (PostgreSQL 53300, 57P03; MySQL 1040,
	// 1203, 1226). Nothing was sent, so running the work again is safe —
	// after a pause: the outage may last seconds, and a fleet retrying at
	// full speed only deepens it.
	ClassUnavailable
)

var classNames = [...]string{
	ClassOther:           "other",
	ClassUniqueViolation: "unique violation",
	ClassSerialization:   "serialization failure",
	ClassDeadlock:        "deadlock",
	ClassLockNotAcquired: "lock not acquired",
	ClassBusy:            "busy",
	ClassNotSent:         "connection failed before sending",
	ClassConnection:      "connection lost",
	ClassCommitUnknown:   "commit outcome unknown",
	ClassCanceled:        "canceled",

	ClassNotNullViolation:    "not-null violation",
	ClassForeignKeyViolation: "foreign key violation",
	ClassCheckViolation:      "check violation",
	ClassIntegrityViolation:  "integrity violation",
	ClassUnavailable:         "server unavailable",
}

// String returns the class in plain words, for example "deadlock".
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown class"
}

// Integrity reports whether the class is a constraint the data broke:
// unique, not-null, foreign key, check or another integrity violation.
// Running the same statement again cannot succeed unless the data
// changes.
func (c Class) Integrity() bool {
	switch c {
	case ClassUniqueViolation, ClassNotNullViolation, ClassForeignKeyViolation, ClassCheckViolation, ClassIntegrityViolation:
		return true
	}
	return false
}

// Retryable reports whether work that failed with this class certainly
// did not take effect and can be run again from the start with a good
// chance of success: serialization failures, deadlocks, SQLITE_BUSY,
// connections that failed before anything was sent, and a server that
// could not be reached or refused the session. A lock not acquired is
// not retryable: a lock held longer than the caller would wait is held by
// someone the caller should hear about. ClassConnection is not either: the statement
// may have run (a transaction's runner knows more, see racefree.RunInTx).
func (c Class) Retryable() bool {
	switch c {
	case ClassSerialization, ClassDeadlock, ClassBusy, ClassNotSent, ClassUnavailable:
		return true
	}
	return false
}

// Outage reports whether the class says that the server, or the way to
// it, failed rather than the work: a connection lost, not sent, or not
// opened. A retry of such an error waits as for an outage (longer pauses)
// rather than as for contention.
func (c Class) Outage() bool {
	switch c {
	case ClassNotSent, ClassConnection, ClassUnavailable:
		return true
	}
	return false
}

// classError is the sentinel for one class; *Error matches it with errors.Is.
type classError struct{ class Class }

func (e *classError) Error() string { return "racefree: " + e.class.String() }

// Sentinels, one per class, for errors.Is.
var (
	ErrUniqueViolation error = &classError{ClassUniqueViolation}
	ErrSerialization   error = &classError{ClassSerialization}
	ErrDeadlock        error = &classError{ClassDeadlock}
	ErrLockNotAcquired error = &classError{ClassLockNotAcquired}
	ErrBusy            error = &classError{ClassBusy}
	ErrNotSent         error = &classError{ClassNotSent}
	ErrConnection      error = &classError{ClassConnection}
	ErrCommitUnknown   error = &classError{ClassCommitUnknown}
	ErrCanceled        error = &classError{ClassCanceled}
	ErrUnavailable     error = &classError{ClassUnavailable}

	ErrNotNullViolation    error = &classError{ClassNotNullViolation}
	ErrForeignKeyViolation error = &classError{ClassForeignKeyViolation}
	ErrCheckViolation      error = &classError{ClassCheckViolation}
	// ErrIntegrity matches every integrity class (unique, not-null,
	// foreign key, check and other violations), like Django's
	// IntegrityError: the data broke a constraint.
	ErrIntegrity error = &classError{ClassIntegrityViolation}
)

var sentinels = map[Class]error{
	ClassUniqueViolation: ErrUniqueViolation,
	ClassSerialization:   ErrSerialization,
	ClassDeadlock:        ErrDeadlock,
	ClassLockNotAcquired: ErrLockNotAcquired,
	ClassBusy:            ErrBusy,
	ClassNotSent:         ErrNotSent,
	ClassConnection:      ErrConnection,
	ClassCommitUnknown:   ErrCommitUnknown,
	ClassCanceled:        ErrCanceled,
	ClassUnavailable:     ErrUnavailable,

	ClassNotNullViolation:    ErrNotNullViolation,
	ClassForeignKeyViolation: ErrForeignKeyViolation,
	ClassCheckViolation:      ErrCheckViolation,
	ClassIntegrityViolation:  ErrIntegrity,
}

// Error is a classified database error. It wraps the driver's error without
// changing its message, so wrapping is invisible to logs, and it matches the
// class sentinel (ErrDeadlock, …) with errors.Is and the driver's own error
// type with errors.As.
type Error struct {
	Class Class
	// Code is the engine's error code as text: a SQLSTATE on PostgreSQL, the
	// error number on MySQL, the extended result code on SQLite. Empty when
	// the error did not come from the server.
	Code string
	// Constraint names the violated constraint or index when the engine
	// reports it: unique, foreign key and check violations on PostgreSQL
	// and MySQL/MariaDB, check violations on SQLite.
	Constraint string
	// Columns lists the columns of the violation when the engine reports
	// them: a unique violation on SQLite (as "table.column"), the column of
	// a not-null violation (PostgreSQL and MySQL: "column"; SQLite:
	// "table.column").
	Columns []string
	// Err is the driver's error.
	Err error
}

func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	if e.Err == nil {
		return "racefree: " + e.Class.String()
	}
	return e.Err.Error()
}

// Unwrap returns the driver's error.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is the sentinel of e's class, or ErrIntegrity
// for every integrity class. A nil *Error (what Classify returns for a nil
// error, possibly stored in an error variable) matches nothing.
func (e *Error) Is(target error) bool {
	if e == nil {
		return false
	}
	if target == ErrIntegrity && e.Class.Integrity() {
		return true
	}
	s, ok := sentinels[e.Class]
	return ok && s == target
}

// Classifier turns a driver error into a classified *Error.
type Classifier interface {
	// Classify returns nil for a nil error and a non-nil *Error otherwise
	// (of ClassOther when nothing more is known). It looks through wrapping.
	Classify(err error) *Error
}

// ClassifyCommon handles what every engine shares: nil, errors already
// classified, the class sentinels (ErrDeadlock, …) wrapped by other code,
// context errors and driver.ErrBadConn. It returns nil when the
// engine-specific classifier must decide.
func ClassifyCommon(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		if ce.Class == ClassOther {
			return nil // let the engine look deeper; an outer layer may know more
		}
		return ce
	}
	var se *classError
	if errors.As(err, &se) {
		// One of the sentinels, wrapped by the caller's own code (a
		// transaction's function returning ErrDeadlock it learned of some
		// other way): it says its class.
		return &Error{Class: se.class, Err: err}
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Class: ClassCanceled, Err: err}
	case errors.Is(err, driver.ErrBadConn):
		return &Error{Class: ClassNotSent, Err: err}
	}
	return nil
}

// Wrap returns err classified as c. A nil err stays nil.
func Wrap(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Class: c, Err: err}
}

// ClassOf returns the class of err as classified by cl, or ClassOther.
func ClassOf(cl Classifier, err error) Class {
	if e := cl.Classify(err); e != nil {
		return e.Class
	}
	return ClassOther
}

// IsUnreachable reports whether err says that a connection could not be
// opened at all, so that nothing was sent on it: a refused connection, a
// failed or timed-out dial, a name that did not resolve for now. A name
// that does not exist is not unreachable but wrong, and is left out.
func IsUnreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// IsMisaddressed reports whether err says that the server's name does not
// exist: a DSN's mistake, which no wait will fix.
func IsMisaddressed(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// IsNetworkError reports whether err comes from the network rather than the
// server: a reset or closed connection, an unexpected EOF, a dial failure.
func IsNetworkError(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return true
	}
	return false
}
