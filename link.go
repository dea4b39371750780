package racefree

import (
	"context"
	"fmt"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// Link adds a row to a many-to-many join table, for example
// Values{"post_id": 1, "tag_id": 7}, unless it is there already. created
// reports whether this call added it. Adding the same link from many
// workers at once leaves one row and is never an error: exactly one caller
// sees created.
//
// With a unique index (or primary key) covering exactly link's columns,
// Link is one statement: INSERT … ON CONFLICT DO NOTHING on PostgreSQL and
// SQLite, an INSERT whose duplicate-key error on that index means "already
// linked" on MySQL/MariaDB. A conflict on another unique index, or a
// foreign key violation, is returned. Without such an index the lock
// strategy decides, as in GetOrCreate. On PostgreSQL inside a *Tx the
// statement runs in a savepoint.
func Link(ctx context.Context, ex Executor, table string, link Values, opts Options) (created bool, err error) {
	o, err := prepare[Values](ctx, ex, "link", table, link, nil, opts)
	if err != nil {
		return false, err
	}
	if o.strat != StrategyConstraint {
		_, created, err = run[Values](ctx, o, false)
		return created, err
	}
	query := o.insertSQLNoReturning()
	if o.d.Features().Has(dialect.OnConflict) {
		query += " ON CONFLICT DO NOTHING"
	}
	do := func(ctx context.Context) error {
		res, err := o.h.q.ExecContext(ctx, query, o.ivals...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n > 0
		return err
	}
	attempt := func(ctx context.Context) error {
		if o.h.tx != nil && o.d.Name() == "postgres" {
			return o.h.tx.savepoint(ctx, do)
		}
		return do(ctx)
	}
	if o.h.tx != nil {
		err = attempt(ctx)
	} else {
		err = o.db.retry(ctx, opts.Tx, attempt)
	}
	if err != nil {
		if violatesIndex(o.t, o.db.Classify(err), o.lcols) {
			return false, nil // already linked
		}
		return false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
	}
	return created, nil
}

// Unlink deletes the join row that matches link. deleted reports whether
// this call removed it; concurrent Unlinks of the same link leave no row
// and report deleted to exactly one caller. It needs no index.
func Unlink(ctx context.Context, ex Executor, table string, link Values) (deleted bool, err error) {
	o, err := prepare[Values](ctx, ex, verbUnlink, table, link, nil, Options{})
	if err != nil {
		return false, err
	}
	var sb strings.Builder
	sb.WriteString("DELETE FROM " + o.qtable())
	args := o.writeWhere(&sb, 0)
	res, err := o.h.q.ExecContext(ctx, sb.String(), args...)
	if err != nil {
		return false, o.db.wrapErr(o.verb, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, o.db.wrapErr(o.verb, err)
	}
	return n > 0, nil
}
