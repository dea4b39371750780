package racefree

import (
	"context"
	"time"
)

// UpdateOrCreate sets values on the row of table that matches lookup, or
// creates the row from lookup, values and opts.CreateOnly if there is
// none, and returns the row as it is afterwards. created is true only for
// the caller whose INSERT made the row. The values are constants, so no
// update is lost: each caller's values are applied whole, in the order the
// engine serializes the writes (the last writer wins, as with any UPDATE).
// For values computed from the current row, use UpdateOrCreateFunc.
//
// An existing row gets exactly the columns in values; the others keep
// what they hold, so callers that update different columns of one row
// never undo each other's work. A NOT NULL column without a default is
// needed only to create the row: when it is missing and the row does not
// exist, the call fails with ErrInvalidInput naming every missing column,
// and nothing is written.
//
// With the constraint strategy the work is one statement on PostgreSQL
// when the row could be created (INSERT … ON CONFLICT DO UPDATE …
// RETURNING, created read from the system column xmax), and otherwise an
// UPDATE first and, when it matched nothing, an INSERT whose lost race
// goes back to the UPDATE. MySQL's INSERT … ON DUPLICATE KEY UPDATE is
// never used: a conflict on any other unique index would silently update
// that other row. A unique violation is a lost race when the lookup's row
// is there afterwards (it is then updated), and is returned otherwise, as
// in GetOrCreate. The lock and serializable strategies read, then UPDATE
// or INSERT, in a transaction. The recovery rules, the executors and the
// errors are those of GetOrCreate.
func UpdateOrCreate[T any](ctx context.Context, ex Executor, table string, lookup, values Values, opts Options) (row T, created bool, err error) {
	c, err := planCall[T](ctx, ex, verbUpdate, table, lookup, values, opts)
	if err != nil {
		return row, false, err
	}
	if c.nset == 0 {
		return row, false, inputError(c.verb, "no values to set (use GetOrCreate to only create)")
	}
	attempt := func(ctx context.Context) error {
		var err error
		if c.strat == StrategyConstraint {
			row, created, err = upsertConstraint[T](ctx, c, c.h.q, c.h.tx)
			return err
		}
		return c.inTx(ctx, func(ctx context.Context, tx *Tx) error {
			var err error
			row, created, err = lockedUpsert[T](ctx, c, tx, nil)
			return err
		})
	}
	start := time.Now()
	err = attempt(ctx)
	switch {
	case err == nil, c.h.tx != nil:
		return row, created, err
	case c.strat == StrategyConstraint && c.h.conn != nil:
		// Statements on the caller's connection: retried when they
		// failed retryably (a deadlock, a busy error).
		err = c.db.retryAfter(ctx, c.opts.Retry, start, err, attempt)
		return row, created, err
	case c.h.conn != nil:
		return row, created, err // the transaction (inTx) retried itself
	}
	// On the pool the call runs again after a lost connection or an
	// unknown COMMIT, which is safe: its values are constants, applied
	// whole again. What it can say about created then is as GetOrCreate's:
	// exact, or a *CreatedUnknownError.
	var lost recovery
	err = c.db.retryAfter(ctx, c.opts.Retry, start, lost.note(c, err), func(ctx context.Context) error {
		return lost.note(c, attempt(ctx))
	})
	if err == nil && !created {
		switch {
		case lost.created:
			created = true
		case lost.doubt != nil:
			err = &CreatedUnknownError{Verb: c.verb, Table: c.t.Name, Err: lost.doubt}
		}
	}
	return row, created, err
}

// UpdateOrCreateFunc is UpdateOrCreate for new values computed from the
// current row: inside a transaction (the caller's *Tx, or one begun here
// and retried on serialization failures and deadlocks) it locks the row
// matching lookup (SELECT … FOR UPDATE; SQLite's write transaction), calls
// update with it, or with nil when there is none, and writes what update
// returns: an UPDATE of those columns, or an INSERT of lookup, those
// columns and opts.CreateOnly. Because the row is locked from the read to
// the write, two concurrent calls apply one after the other: no update is
// lost. With no unique index covering the lookup, the lock strategy's
// named lock covers the case where the row does not exist yet.
//
// update may run more than once when the transaction is retried; it must
// not have side effects outside the database. An error from update aborts
// the call and is returned as it is.
func UpdateOrCreateFunc[T any](ctx context.Context, ex Executor, table string, lookup Values, update func(current *T) (Values, error), opts Options) (row T, created bool, err error) {
	c, err := planCall[T](ctx, ex, verbUpdateFunc, table, lookup, nil, opts)
	if err != nil {
		return row, false, err
	}
	c.verb = verbUpdate + " " + table
	if update == nil {
		return row, false, inputError(c.verb, "nil update function")
	}
	err = c.inTx(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		row, created, err = lockedUpsert[T](ctx, c, tx, update)
		return err
	})
	return row, created, err
}
