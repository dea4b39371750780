package racefree

import (
	"database/sql"
	"time"

	"github.com/racefree/racefree/internal/backoff"
)

// Defaults for the zero TxOptions.
const (
	// DefaultMaxAttempts is how many times RunInTx runs a transaction that
	// keeps failing with retryable errors. Under heavy contention on one
	// key, SERIALIZABLE transactions on PostgreSQL were measured failing 20
	// times in a row now and then, so the budget is generous; the time
	// budget bounds the worst case.
	DefaultMaxAttempts = 30
	// DefaultMaxElapsed bounds the time spent on one RunInTx call across all
	// attempts and the pauses between them.
	DefaultMaxElapsed = 30 * time.Second
	// DefaultBaseDelay is the ceiling of the first pause; it doubles with
	// every retry up to DefaultMaxDelay. Pauses are drawn uniformly below
	// the ceiling (full jitter), so workers that collided spread out.
	DefaultBaseDelay = 2 * time.Millisecond
	// DefaultMaxDelay caps the pause between two attempts.
	DefaultMaxDelay = 250 * time.Millisecond
	// DefaultOutageBaseDelay is the ceiling of the first pause after the
	// server could not be reached or turned the session away
	// (ErrUnavailable); it doubles with every such failure in a row up to
	// DefaultOutageMaxDelay. A restart takes seconds and a fleet over the
	// connection limit needs some of its members to wait: pausing on the
	// contention scale would only hammer the server.
	DefaultOutageBaseDelay = 50 * time.Millisecond
	// DefaultOutageMaxDelay caps the pause after ErrUnavailable.
	DefaultOutageMaxDelay = time.Second
)

// TxOptions configure RunInTx. The zero value is the sensible default: the
// server's default isolation level, read-write, and retries of retryable
// errors within DefaultMaxAttempts and DefaultMaxElapsed.
type TxOptions struct {
	// Isolation is the isolation level; sql.LevelDefault leaves the
	// server's default (READ COMMITTED on PostgreSQL, REPEATABLE READ on
	// MySQL/MariaDB, SERIALIZABLE on SQLite, which has no other).
	Isolation sql.IsolationLevel
	// ReadOnly begins a read-only transaction. On SQLite it also begins
	// DEFERRED rather than IMMEDIATE, so that readers never wait for the
	// write lock.
	ReadOnly bool
	// MaxAttempts is the attempt budget: 0 means DefaultMaxAttempts, 1
	// means no retries. Attempts that failed because no session could be
	// opened (ErrUnavailable) do not count: waiting for the server is
	// bounded by MaxElapsed and the context's deadline.
	MaxAttempts int
	// MaxElapsed is the time budget across attempts: 0 means
	// DefaultMaxElapsed. The context's deadline, if sooner, wins.
	MaxElapsed time.Duration
	// BaseDelay and MaxDelay shape the backoff between attempts: 0 means
	// DefaultBaseDelay and DefaultMaxDelay.
	BaseDelay, MaxDelay time.Duration
	// OutageBaseDelay and OutageMaxDelay shape the backoff after an
	// attempt failed because no session could be opened (ErrUnavailable):
	// 0 means DefaultOutageBaseDelay and DefaultOutageMaxDelay. The
	// attempt and time budgets and the context's deadline bound the wait
	// for the server as they bound every retry.
	OutageBaseDelay, OutageMaxDelay time.Duration
	// VerifyCommit settles a COMMIT whose answer was lost instead of
	// returning ErrCommitUnknown, on engines that can look a transaction
	// up after the fact (dialect.CommitResolver: PostgreSQL 10 and
	// later). Before COMMIT the runner reads the transaction's id — one
	// more round trip per transaction — and when the answer is lost it
	// asks the server, on another connection, what became of it:
	// committed, and RunInTx returns nil; rolled back, and it runs the
	// transaction again; still open (its session has not yet noticed the
	// client is gone), and it asks again after a pause, within the
	// budgets. Only when the server cannot say does ErrCommitUnknown
	// remain. A transaction that wrote nothing has no id and nothing to
	// settle. Refused with ErrUnsupported where the engine cannot look
	// transactions up; RunOnce settles unknown commits on every engine.
	VerifyCommit bool
	// OnRetry, if set, is called after a failed attempt that will be
	// retried, with the attempt number (1 for the first), its error and the
	// pause before the next attempt. Use it for metrics and logs.
	OnRetry func(attempt int, err error, delay time.Duration)
}

func (o TxOptions) maxAttempts() int {
	if o.MaxAttempts > 0 {
		return o.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (o TxOptions) maxElapsed() time.Duration {
	if o.MaxElapsed > 0 {
		return o.MaxElapsed
	}
	return DefaultMaxElapsed
}

func (o TxOptions) backoff() backoff.Policy {
	p := backoff.Policy{Base: o.BaseDelay, Max: o.MaxDelay}
	if p.Base <= 0 {
		p.Base = DefaultBaseDelay
	}
	if p.Max <= 0 {
		p.Max = DefaultMaxDelay
	}
	return p
}

// outageBackoff is the backoff after ErrUnavailable.
func (o TxOptions) outageBackoff() backoff.Policy {
	p := backoff.Policy{Base: o.OutageBaseDelay, Max: o.OutageMaxDelay}
	if p.Base <= 0 {
		p.Base = DefaultOutageBaseDelay
	}
	if p.Max <= 0 {
		p.Max = DefaultOutageMaxDelay
	}
	return p
}

func (o TxOptions) sqlOptions() *sql.TxOptions {
	return &sql.TxOptions{Isolation: o.Isolation, ReadOnly: o.ReadOnly}
}
