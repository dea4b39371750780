// Package racefree makes concurrent database writes correct: get-or-create
// without duplicates, transactions that retry what can be retried, row,
// table and named locks taken in an order that cannot deadlock, on
// PostgreSQL, MySQL/MariaDB and SQLite, inside or outside your own
// transaction.
//
// The database is the only party that sees every worker — goroutines,
// processes, machines — so racefree makes it the arbiter: unique
// constraints, single atomic statements, locks, the right isolation level,
// and retries. A mutex inside one process never provides correctness here.
//
// # Opening
//
// Import the dialect of your engine for its side effect and open a DSN, or
// wrap a *sql.DB you already have with [New]:
//
//	import _ "github.com/racefree/racefree/dialect/pgdialect"
//
//	db, err := racefree.Open(ctx, "postgres://app@db:5432/app")
//
// The root package imports no driver: a program compiles only the drivers
// of the dialects it imports.
//
// # Where operations run
//
// Every operation takes an [Executor]: the [*DB] pool, a [*Tx] (racefree's
// own from [RunInTx], or yours adopted with [DB.WrapTx]) or a [*Conn].
//
// # Errors
//
// Database errors are classified (see package dialect) and match the
// Err* sentinels with errors.Is: [ErrUniqueViolation], [ErrSerialization],
// [ErrDeadlock], [ErrLockTimeout], [ErrBusy], [ErrNotSent], [ErrUnavailable],
// [ErrConnection], [ErrCanceled]. A commit whose outcome is unknown is a
// [*CommitUnknownError]; a retry budget spent is a [*RetryError] that holds
// both the last error and the reason retrying stopped.
//
// # The worst day
//
// Work that certainly did not take effect is run again — a transaction
// whose connection broke before COMMIT was sent, a get-or-create whose
// statement was cut off — and a server that is restarting or full is waited
// out ([ErrUnavailable]), within the retry budget and the context's
// deadline. A COMMIT whose answer was lost is never run again blindly:
// [RunOnce] makes work exactly-once by an idempotency key on every engine,
// and [TxOptions].VerifyCommit asks the server where it can tell. What each
// operation guarantees per engine and isolation level, and what to do with
// each error, is in docs/GUARANTEES.md.
package racefree
