package racefree

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/racefree/racefree/dialect"
)

// Error classes, re-exported from package dialect so that callers can write
// errors.Is(err, racefree.ErrDeadlock). Every error racefree returns from the
// database is classified; use [DB.Classify] for errors from your own
// statements.
var (
	ErrUniqueViolation = dialect.ErrUniqueViolation
	ErrSerialization   = dialect.ErrSerialization
	ErrDeadlock        = dialect.ErrDeadlock
	// ErrLockNotAcquired: a lock or lease another session holds was not
	// granted as the call's Wait allowed — at once (Try), within its
	// Timeout, or within a lock timeout of the server's (PostgreSQL's
	// lock_timeout, MySQL's innodb_lock_wait_timeout) — or a NOWAIT in
	// your own query (LockClause) was refused. Every racefree call that
	// waits returns it the same way; classify your own statements' errors
	// with DB.Classify to match theirs. Nothing was locked, and the
	// transaction is still usable. RunInTx does not retry it: the holder
	// is news for the caller.
	ErrLockNotAcquired = dialect.ErrLockNotAcquired
	ErrBusy            = dialect.ErrBusy
	ErrNotSent         = dialect.ErrNotSent
	ErrConnection      = dialect.ErrConnection
	ErrCommitUnknown   = dialect.ErrCommitUnknown
	ErrCanceled        = dialect.ErrCanceled
	// ErrUnavailable: no session could be opened — the server refused or
	// could not be reached, or turned the session away at login (too many
	// connections, starting up, shutting down). Nothing was sent. racefree
	// retries it with longer pauses (Backoff.OutageBaseDelay) within the
	// retry budget and the context's deadline before returning it.
	ErrUnavailable = dialect.ErrUnavailable

	// The data broke a constraint. ErrIntegrity matches all of them,
	// ErrUniqueViolation included (like Django's IntegrityError).
	ErrNotNullViolation    = dialect.ErrNotNullViolation
	ErrForeignKeyViolation = dialect.ErrForeignKeyViolation
	ErrCheckViolation      = dialect.ErrCheckViolation
	ErrIntegrity           = dialect.ErrIntegrity
)

// IsRetryable reports whether err, returned by racefree, means that the
// work certainly did not take effect and running it again from the start
// may succeed: a serialization failure, a deadlock, SQLite's busy error, a
// connection that failed before anything was sent, a server that could not
// be reached (ErrUnavailable), or a transaction whose connection broke
// before its COMMIT was sent. It is for callers who run their own retry
// loops; RunInTx already retries these. It is false for nil, for a commit
// whose outcome is unknown (running it again may apply it twice), for a
// *RetryError (racefree's own budget is spent), and for a driver error
// racefree did not classify: pass errors from your own statements through
// DB.Classify first. The class sentinels (ErrDeadlock, …) and
// driver.ErrBadConn are recognised however they are wrapped.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrCommitUnknown) || errors.As(err, new(*RetryError)) {
		return false
	}
	if errors.As(err, new(*retrySafeError)) {
		return true
	}
	ce := dialect.ClassifyCommon(err)
	return ce != nil && ce.Class.Retryable()
}

// ErrUnsupported is returned when an option or operation asks for
// something the engine does not have (a read-only transaction on TiDB, say):
// racefree refuses it rather than run without it.
var ErrUnsupported = errors.New("racefree: not supported by this engine")

// Reasons a retry loop stopped, found in [RetryError.Reason].
var (
	// ErrAttemptsExhausted: every attempt the budget allowed failed.
	ErrAttemptsExhausted = errors.New("racefree: attempt budget spent")
	// ErrTimeBudgetSpent: the next backoff would have passed the time budget.
	ErrTimeBudgetSpent = errors.New("racefree: time budget spent")
)

// RetryError is returned when work racefree retries — a transaction, a
// get-or-create on the pool, a lock on the pool, opening a DB while the
// server is away — kept failing with retryable errors until its budget ran
// out or its context ended. It matches both the last attempt's error and
// the reason with errors.Is and errors.As; the last error's message names
// the work.
type RetryError struct {
	// Attempts is how many times the transaction ran.
	Attempts int
	// Elapsed is the time from the first attempt to giving up.
	Elapsed time.Duration
	// LastErr is the error of the last attempt.
	LastErr error
	// Reason is why retrying stopped: ErrAttemptsExhausted,
	// ErrTimeBudgetSpent, or the context's error.
	Reason error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("racefree: gave up after %d attempt%s in %v (%v): %v",
		e.Attempts, plural(e.Attempts), e.Elapsed.Round(time.Millisecond), e.Reason, e.LastErr)
}

// Unwrap returns both the last error and the reason.
func (e *RetryError) Unwrap() []error { return []error{e.LastErr, e.Reason} }

// CommitUnknownError means COMMIT was sent and no answer came back: the
// connection broke or the context ended while the server was committing.
// The transaction may have been committed or not. racefree never retries
// it, because running a committed transaction twice applies it twice; make
// the work idempotent (an idempotency key checked inside the transaction)
// and retry yourself, or check the outcome. It matches ErrCommitUnknown.
type CommitUnknownError struct {
	Err error
}

func (e *CommitUnknownError) Error() string {
	return "racefree: commit transaction: outcome unknown: " + e.Err.Error()
}

// Unwrap returns the error COMMIT returned.
func (e *CommitUnknownError) Unwrap() error { return e.Err }

// Is matches ErrCommitUnknown.
func (e *CommitUnknownError) Is(target error) bool { return target == ErrCommitUnknown }

// ErrCreatedUnknown is matched, together with ErrCommitUnknown, by the
// error a get-or-create call returns beside a valid row when it cannot say
// whether it created the row: an INSERT of its own was cut off with no
// answer, and when it looked again the row was there — inserted by that
// INSERT, or by a concurrent call. The row is the one the lookup names, as
// on success; only `created` is unknown (it is returned false). See
// *CreatedUnknownError.
var ErrCreatedUnknown = errors.New("racefree: whether this call created the row is unknown")

// CreatedUnknownError is returned, with the row, by a get-or-create call
// whose INSERT's outcome was lost (see ErrCreatedUnknown). It matches
// ErrCreatedUnknown and ErrCommitUnknown, and wraps the error that cut the
// INSERT off. A caller that needs `created` exactly makes the creation's
// side effects idempotent (RunOnce), or treats the row as possibly new.
type CreatedUnknownError struct {
	// Verb and Table name the call, as in other errors.
	Verb, Table string
	// Err is the error that cut the INSERT off.
	Err error
}

func (e *CreatedUnknownError) Error() string {
	return "racefree: " + e.Verb + " " + e.Table + ": row found after an INSERT whose outcome was lost, so whether this call created it is unknown: " + e.Err.Error()
}

// Unwrap returns the error that cut the INSERT off, classified as an
// unknown commit.
func (e *CreatedUnknownError) Unwrap() error {
	return &dialect.Error{Class: dialect.ClassCommitUnknown, Err: e.Err}
}

// Is matches ErrCreatedUnknown and ErrCommitUnknown.
func (e *CreatedUnknownError) Is(target error) bool {
	return target == ErrCreatedUnknown || target == ErrCommitUnknown
}

// retrySafeError marks an attempt's error that its class alone does not
// show to be safe to run again, but whose phase does: a connection lost
// under BEGIN or under a statement of a transaction, before COMMIT was
// sent, when the transaction's own connection is shown to be dead; a
// COMMIT whose answer was lost and that the server says it rolled back; a
// get-or-create's statement cut off, which running the call again settles.
// It is transparent: message and chain are the error's own.
type retrySafeError struct{ err error }

func (e *retrySafeError) Error() string { return e.err.Error() }
func (e *retrySafeError) Unwrap() error { return e.err }

// restartNowError marks a serialization failure whose cause is already
// gone: the transaction's snapshot predates a row another transaction
// committed (a lost get-or-create race at REPEATABLE READ or
// SERIALIZABLE on PostgreSQL). A new snapshot sees the row, so the retry
// loop runs the next attempt without the pause its policy would give
// after contention; the policy still decides whether there is one.
type restartNowError struct{ err error }

func (e *restartNowError) Error() string { return e.err.Error() }
func (e *restartNowError) Unwrap() error { return e.err }

// ErrInvalidInput matches every error racefree returns for bad input to the
// get-or-create family: an empty lookup, an unknown column, an invalid
// identifier, a value of an unsupported type or of the wrong type for its
// column, a missing required column. Nothing was written when it is
// returned.
var ErrInvalidInput = errors.New("racefree: invalid input")

// Errors of the get-or-create family, for errors.Is.
var (
	// ErrNoCoveringIndex: StrategyConstraint was demanded, but no unique
	// index of the table covers exactly the lookup columns.
	ErrNoCoveringIndex = errors.New("racefree: no unique index covers exactly the lookup columns")
	// ErrNullLookup: a lookup value is NULL and the strategy cannot make
	// it unique (a unique index treats NULLs as distinct, except
	// PostgreSQL 15's NULLS NOT DISTINCT).
	ErrNullLookup = errors.New("racefree: NULL lookup value")
	// ErrRowVanished: the row a lost insert race collided with was deleted
	// before it could be read, again and again, until the bound on
	// attempts (maxVanished) was reached.
	ErrRowVanished = errors.New("racefree: the conflicting row kept vanishing before it could be read")
	// ErrStrategyUnavailable: the demanded strategy cannot work on this
	// engine or in this transaction (for example StrategySerializable on a
	// *Tx that is not SERIALIZABLE).
	ErrStrategyUnavailable = errors.New("racefree: strategy unavailable here")
)

// inputError is an error matching ErrInvalidInput, whose message names the
// call and the problem: "racefree: get or create users: invalid input: …".
func inputError(verb, format string, args ...any) error {
	return &invalidInputError{verb: verb, msg: fmt.Sprintf(format, args...)}
}

// invalidInput wraps err, which says what is wrong with the input (an
// identifier the engine cannot take, say), as an error matching both
// ErrInvalidInput and err.
func invalidInput(verb string, err error) error {
	return &invalidInputError{verb: verb, msg: strings.TrimPrefix(err.Error(), "racefree: "), err: err}
}

type invalidInputError struct {
	verb, msg string
	err       error // the cause, or nil
}

func (e *invalidInputError) Error() string {
	return "racefree: " + e.verb + ": invalid input: " + e.msg
}

// Is matches ErrInvalidInput.
func (e *invalidInputError) Is(target error) bool { return target == ErrInvalidInput }

// Unwrap returns the cause, if any.
func (e *invalidInputError) Unwrap() error { return e.err }

// Errors of the locks and leases (lock.go, namedlock*.go, rowlock.go,
// tablelock.go, fencing.go).

// ErrLockUnsupported is returned when the engine cannot take the lock asked
// for in the place it was asked for, for example a named lock in a
// read-only SQLite transaction, or FOR SHARE on a server without it. It is
// never silently ignored.
var ErrLockUnsupported = dialect.ErrLockUnsupported

// ErrLockLost means a session lock is no longer held: its connection died
// (the server released the lock then) or something else released it.
var ErrLockLost = errors.New("racefree: lock lost: its session ended")

// ErrLeaseLost means a lease's fencing token is no longer the current one:
// the lease expired and someone else acquired it (or it was released). Work
// guarded by it must stop; writes checked with Lease.Check are refused.
var ErrLeaseLost = errors.New("racefree: lease lost: another holder has a newer fencing token")

// Errors of UpdateIfVersion (optimistic.go): optimistic concurrency reads
// a row with its version, works without holding any lock, then writes only
// if nobody changed the row since.
var (
	// ErrVersionChanged: the row exists but its version is not the one the
	// caller read. Read it again and redo the work, or give up.
	ErrVersionChanged = errors.New("racefree: version changed")
	// ErrRowGone: the row no longer exists. Redoing the work cannot help.
	ErrRowGone = errors.New("racefree: row gone")
)

// VersionConflictError is the error UpdateIfVersion returns when it wrote
// nothing. It matches ErrRowGone when Gone is set and ErrVersionChanged
// otherwise.
type VersionConflictError struct {
	// Table and Lookup are the call's: they name the row.
	Table  string
	Lookup Values
	// Expected is the version the caller read; Current the one found, when
	// the row still exists.
	Expected, Current int64
	Gone              bool
}

func (e *VersionConflictError) Error() string {
	if e.Gone {
		return fmt.Sprintf("racefree: update %s if version %d: row %v gone", e.Table, e.Expected, map[string]any(e.Lookup))
	}
	return fmt.Sprintf("racefree: update %s if version %d: row %v is at version %d", e.Table, e.Expected, map[string]any(e.Lookup), e.Current)
}

// Is matches ErrRowGone or ErrVersionChanged.
func (e *VersionConflictError) Is(target error) bool {
	if e.Gone {
		return target == ErrRowGone
	}
	return target == ErrVersionChanged
}
