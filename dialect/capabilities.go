package dialect

import (
	"context"
	"database/sql"
)

// Optional interfaces. The root package asks a Dialect for each of these
// with a type assertion, as database/sql asks a driver for
// driver.ConnBeginTx, and falls back to the standard-SQL behaviour when a
// dialect does not implement it. An engine is a leaf package that
// implements what it has; the root names no engine.

// FreshReader tells how a transaction at an isolation level can read the
// rows committed after its snapshot was taken: the row that beat it in an
// insert race. Without it, only READ COMMITTED (and READ UNCOMMITTED)
// transactions are taken to see them, with a plain SELECT.
type FreshReader interface {
	// FreshRead returns the clause appended to a SELECT in a transaction
	// at iso (known false: the level is not known) so that it reads the
	// latest committed version of the rows ("" when a plain SELECT does),
	// and ok false when no statement of such a transaction can see rows
	// committed after its snapshot, so that only a restart of the whole
	// transaction can.
	FreshRead(iso sql.IsolationLevel, known bool) (clause string, ok bool)
}

// IsolationReader reads the isolation level a transaction runs at.
type IsolationReader interface {
	// CurrentIsolation asks the server which level the transaction or
	// session q runs at; sql.LevelDefault when it cannot tell.
	CurrentIsolation(ctx context.Context, q Querier) (sql.IsolationLevel, error)
}

// UpsertFlagger is implemented by engines whose INSERT … ON CONFLICT (…)
// DO UPDATE … RETURNING can also say whether it inserted the row or
// updated it, so that UpdateOrCreate is one statement with an exact
// created flag.
type UpsertFlagger interface {
	// UpsertInserted returns an expression to append to the RETURNING
	// list of such an upsert: true when the row was inserted, false when
	// an existing row was updated. quotedKey is a quoted NOT NULL column of
	// the row (its primary key, say), for engines that need one. ok is
	// false when the engine has no such expression (CockroachDB).
	UpsertInserted(quotedKey string) (expr string, ok bool)
}

// BatchSizer bounds the statements of a batch.
type BatchSizer interface {
	// BatchParams is the largest number of bound parameters one batch
	// statement should carry.
	BatchParams() int
}

// IgnoreChecker is implemented by engines whose INSERT IGNORE turns errors
// other than duplicate keys into warnings and stores the value altered
// (MariaDB in strict mode), so that a batch can tell a skipped row from an
// altered one.
type IgnoreChecker interface {
	// CheckIgnored is called on the session that has just run an INSERT
	// IGNORE of sent rows of which returned came back. It returns a
	// description of the first altered value when the statement altered
	// one, or "" when every row not returned was skipped.
	CheckIgnored(ctx context.Context, q Querier, sent, returned int) (altered string, err error)
}
