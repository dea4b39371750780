package racefree

import (
	"context"

	"github.com/racefree/racefree/dialect"
)

// Link adds a row to a many-to-many join table, for example
// Values{"post_id": 1, "tag_id": 7}, unless it is there already. created
// reports whether this call added it. Adding the same link from many
// workers at once leaves one row and is never an error: exactly one caller
// sees created.
//
// With a unique index (or primary key) covering exactly link's columns,
// a new link is one statement: INSERT … ON CONFLICT DO NOTHING on
// PostgreSQL and SQLite, a plain INSERT on MySQL/MariaDB. When a unique
// index refuses the row, a read tells "already linked" (the row is there:
// created false, no error) from a clash with another row on another
// unique index, which is returned as the engine's violation, as is a
// foreign key violation. Without such an index the lock strategy decides,
// as in GetOrCreate. On PostgreSQL inside a *Tx the statement runs in a
// savepoint.
func Link(ctx context.Context, ex Executor, table string, link Values, opts Options) (created bool, err error) {
	c, err := planCall[Values](ctx, ex, "link", table, link, nil, opts)
	if err != nil {
		return false, err
	}
	if c.strat != StrategyConstraint {
		_, created, err = execute[Values](ctx, c, false)
		return created, err
	}
	query := c.linkSQL()
	do := func(ctx context.Context) error {
		res, err := c.h.q.Exec(ctx, query, c.ivals...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n > 0
		return err
	}
	attempt := func(ctx context.Context) error {
		created = false
		var err error
		if c.h.tx != nil && c.d.Features().Has(dialect.FailedStatementAbortsTx) {
			err = c.h.tx.savepoint(ctx, do)
		} else {
			err = do(ctx)
		}
		if err != nil && c.db.Classify(err).Class != dialect.ClassUniqueViolation {
			return c.db.wrapErr(c.verb, err)
		}
		if created {
			return nil
		}
		// A unique index refused the row: already linked, or a clash with
		// another row, which createOrFind tells apart as for GetOrCreate.
		_, found, rerr := readRow[Values](ctx, c, c.h.q, c.rereadLock(c.h.tx))
		if rerr != nil || found {
			return rerr
		}
		_, created, err = createOrFind[Values](ctx, c, c.h.q, c.h.tx)
		return err
	}
	if c.h.tx != nil {
		err = attempt(ctx)
	} else {
		err = c.db.retry(ctx, opts.Retry, attempt)
	}
	if err != nil {
		return false, err
	}
	return created, nil
}

// Unlink deletes the join row that matches link. deleted reports whether
// this call removed it; concurrent Unlinks of the same link leave no row
// and report deleted to exactly one caller. It needs no index.
//
// On a *DB or *Conn a DELETE that failed retryably (a deadlock, a busy
// error) runs again as opts.Retry decides. The other options are about
// creating rows and do not apply: a Strategy other than StrategyAuto,
// Adaptive or CreateOnly is refused with ErrInvalidInput.
func Unlink(ctx context.Context, ex Executor, table string, link Values, opts Options) (deleted bool, err error) {
	switch {
	case opts.Strategy != StrategyAuto:
		return false, inputError(verbUnlink+" "+table, "a Strategy (%v) does not apply: a delete needs none", opts.Strategy)
	case opts.Adaptive:
		return false, inputError(verbUnlink+" "+table, "Adaptive does not apply: a delete has no order to adapt")
	case opts.CreateOnly != nil:
		return false, inputError(verbUnlink+" "+table, "CreateOnly does not apply: a delete creates nothing")
	}
	c, err := planCall[Values](ctx, ex, verbUnlink, table, link, nil, Options{})
	if err != nil {
		return false, err
	}
	query, args := c.deleteSQL()
	attempt := func(ctx context.Context) error {
		res, err := c.h.q.Exec(ctx, query, args...)
		if err != nil {
			return c.db.wrapErr(c.verb, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return c.db.wrapErr(c.verb, err)
		}
		deleted = n > 0
		return nil
	}
	if c.h.tx != nil {
		err = attempt(ctx)
	} else {
		err = c.db.retry(ctx, opts.Retry, attempt)
	}
	return deleted, err
}
