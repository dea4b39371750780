package racefree

import "database/sql"

// TxOptions configure RunInTx. The zero value is the sensible default: the
// server's default isolation level, read-write, and retries of retryable
// errors as Backoff's zero value bounds them.
type TxOptions struct {
	// Isolation is the isolation level; sql.LevelDefault leaves the
	// server's default (READ COMMITTED on PostgreSQL, REPEATABLE READ on
	// MySQL/MariaDB, SERIALIZABLE on SQLite, which has no other). A level
	// the engine does not have is refused with ErrUnsupported.
	Isolation sql.IsolationLevel
	// ReadOnly begins a read-only transaction. On SQLite it also begins
	// DEFERRED rather than IMMEDIATE, so that readers never wait for the
	// write lock.
	ReadOnly bool
	// Retry decides whether and when an attempt that failed retryably runs
	// again; nil is Backoff{}, NoRetry runs it once.
	Retry RetryPolicy
	// VerifyCommit settles a COMMIT whose answer was lost instead of
	// returning ErrCommitUnknown, on engines that can look a transaction
	// up after the fact (dialect.CommitResolver: PostgreSQL 10 and
	// later). Before COMMIT the runner reads the transaction's id — one
	// more round trip per transaction — and when the answer is lost it
	// asks the server, on another connection, what became of it:
	// committed, and RunInTx returns nil; rolled back, and it runs the
	// transaction again; still open (its session has not yet noticed the
	// client is gone), and it asks again after a pause, for up to
	// DefaultMaxElapsed. Only when the server cannot say does
	// ErrCommitUnknown remain. A transaction that wrote nothing has no id
	// and nothing to settle. Refused with ErrUnsupported where the engine
	// cannot look transactions up; RunOnce settles unknown commits on
	// every engine.
	VerifyCommit bool
}

func (o TxOptions) sqlOptions() *sql.TxOptions {
	return &sql.TxOptions{Isolation: o.Isolation, ReadOnly: o.ReadOnly}
}
