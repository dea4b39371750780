package racefree

import (
	"context"
)

// GetOrCreate returns the row of table that matches lookup, creating it from
// lookup and defaults if there is none. created is true only for the one
// caller whose INSERT made the row, however many goroutines, processes or
// machines ask for the same lookup at once; a caller who lost the race gets
// the winner's row and no error.
//
// T is a struct whose exported fields carry `db:"column"` tags (the columns
// read back), or Values for the whole row. lookup and defaults map column
// names to values; every name must be a column of table, and no name may be
// in both. A default may be Lazy: computed only if the row is created. Bad
// input returns an error matching ErrInvalidInput, naming every problem,
// before anything is sent; a NOT NULL column without a default is needed
// only when the row must be created.
//
// GetOrCreate reads first: a hit is one SELECT. On a miss, the strategy
// (see Strategy and Options) decides who creates the row. With the
// constraint strategy a miss is one more statement (INSERT … ON CONFLICT
// DO NOTHING RETURNING on PostgreSQL and SQLite, INSERT … RETURNING on
// MariaDB), and a lost race one re-read, chosen by the isolation level:
// plain outside a transaction and at READ COMMITTED; locking (LOCK IN SHARE
// MODE) in a MySQL/MariaDB transaction at REPEATABLE READ, whose snapshot
// cannot see the winner; and in a PostgreSQL transaction at REPEATABLE READ
// or SERIALIZABLE, an error matching ErrSerialization, which RunInTx turns
// into a restart of the whole transaction. If the winner's row is deleted
// before the re-read, GetOrCreate tries again, up to a bound.
//
// Whichever unique index refuses the INSERT, the lookup's row is read
// again: if it is there, the call lost a race and returns it. Only when it
// is not is the violation returned, as the engine raised it (it matches
// ErrUniqueViolation): the row clashes with a different row on another
// unique index, and no retry can fix that.
//
// ex may be a *DB, a *Conn or a *Tx. On a *Tx, GetOrCreate never commits or
// rolls back; where a failed statement aborts the transaction (PostgreSQL)
// it wraps its INSERT in a savepoint so that a failure leaves the
// transaction usable.
func GetOrCreate[T any](ctx context.Context, ex Executor, table string, lookup, defaults Values, opts Options) (row T, created bool, err error) {
	c, err := planCall[T](ctx, ex, "get or create", table, lookup, defaults, opts)
	if err != nil {
		return row, false, err
	}
	insertFirst := false
	if opts.Adaptive {
		insertFirst = c.db.hitStat(c.statKey()).ratio() < insertFirstBelow
	}
	return coalesce[T](ctx, c, insertFirst)
}
