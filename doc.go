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
// [ErrDeadlock], [ErrLockTimeout], [ErrBusy], [ErrNotSent], [ErrConnection],
// [ErrCanceled]. A commit whose outcome is unknown is a
// [*CommitUnknownError]; a retry budget spent is a [*RetryError] that holds
// both the last error and the reason retrying stopped.
package racefree
