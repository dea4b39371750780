package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

// UpdateOrCreate's writes: one upsert statement where the engine can say
// whether it inserted, an UPDATE then an INSERT elsewhere, and the locked
// read-then-write of UpdateOrCreateFunc and the lock and serializable
// strategies.

// upsertConstraint is one UpdateOrCreate with the constraint strategy.
func upsertConstraint[T any](ctx context.Context, c *call, q dialect.Querier, tx *Tx) (row T, created bool, err error) {
	if inserted, ok := c.upsertInserted(); ok && len(c.missing) == 0 && !hasLazy(c.ivals[len(c.lcols)+c.nset:]) {
		// One statement, when the engine can say whether it inserted and
		// the statement may insert: every column the row needs is given,
		// and no create-only value is Lazy (it would be computed for a row
		// that exists).
		return upsertOneStatement[T](ctx, c, q, tx, inserted)
	}
	row, found, err := updateRow[T](ctx, c, q, tx, false)
	if err != nil || found {
		return row, false, err
	}
	if len(c.missing) > 0 {
		// The row cannot be created. On MySQL an UPDATE that changed
		// nothing reports no row even when one matched: read to tell.
		if !c.d.Features().Has(dialect.UpdateReturning) {
			if row, found, err = readRow[T](ctx, c, q, c.rereadLock(tx)); err != nil || found {
				return row, false, err
			}
		}
		return row, false, c.checkInsert()
	}
	return createOr(ctx, c, q, tx, func(ctx context.Context) (T, bool, error) {
		// The row is there now, or another row clashes: apply the values
		// to the lookup's row if it exists.
		return updateRow[T](ctx, c, q, tx, true)
	})
}

// updateRow updates the row matching the lookup with the values and
// returns it; found is false when the UPDATE matched nothing. On MySQL,
// whose UPDATE counts changed rows rather than matched ones, an UPDATE
// that changed nothing reports nothing; with confirm, the row is then
// read (with the re-read's locking rules) to tell.
func updateRow[T any](ctx context.Context, c *call, q dialect.Querier, tx *Tx, confirm bool) (row T, found bool, err error) {
	if err := c.beforeUpdate(ctx); err != nil {
		return row, false, err
	}
	cols, vals := c.setCols(), c.setVals()
	if c.d.Features().Has(dialect.UpdateReturning) {
		query, args := c.updateSQL(cols, vals, true)
		row, err = scanInto[T](c.codec, q.QueryRow(ctx, query, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return row, false, nil
		}
		if err != nil {
			return row, false, fmt.Errorf("racefree: %s: %w", c.verb, c.db.Classify(err))
		}
		return row, true, nil
	}
	query, args := c.updateSQL(cols, vals, false)
	res, err := q.Exec(ctx, query, args...)
	if err != nil {
		return row, false, fmt.Errorf("racefree: %s: %w", c.verb, c.db.Classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return row, false, fmt.Errorf("racefree: %s: %w", c.verb, c.db.Classify(err))
	}
	if n == 0 {
		if !confirm {
			return row, false, nil
		}
		return readRow[T](ctx, c, q, c.rereadLock(tx))
	}
	// The row is ours in a transaction; in autocommit this reads the
	// latest committed version, ours or a later writer's.
	return readRow[T](ctx, c, q, "")
}

// upsertInserted is the dialect's expression telling whether an upsert
// inserted its row (see dialect.UpsertFlagger), when it has one and ON
// CONFLICT (the constraint strategy always has a covering index).
func (c *call) upsertInserted() (string, bool) {
	uf, ok := c.d.(dialect.UpsertFlagger)
	if !ok || !c.d.Features().Has(dialect.OnConflict) || c.ix == nil {
		return "", false
	}
	key := ""
	for _, ix := range c.t.Unique {
		if col, found := c.t.Column(ix.Columns[0]); ix.Primary && found && !col.Nullable {
			key = c.t.ident(col.Name)
		}
	}
	return uf.UpsertInserted(key)
}

// upsertOneStatement is INSERT … ON CONFLICT (lookup) DO UPDATE …
// RETURNING …, inserted: the dialect's expression that says whether the
// row was inserted. A unique violation of another index is settled as
// createOr settles one: the lookup's row, if it exists, is updated
// instead.
func upsertOneStatement[T any](ctx context.Context, c *call, q dialect.Querier, tx *Tx, inserted string) (row T, created bool, err error) {
	if err := c.beforeWrite(ctx); err != nil {
		return row, false, err
	}
	query := c.upsertSQL(inserted)
	do := func(ctx context.Context) error {
		var inserted bool
		row, err = scanInto[T](c.codec, extraScanner{q.QueryRow(ctx, query, c.ivals...), &inserted})
		created = inserted
		return err
	}
	if tx != nil && c.d.Features().Has(dialect.FailedStatementAbortsTx) {
		err = tx.savepoint(ctx, do)
	} else {
		err = do(ctx)
	}
	if err == nil {
		return row, created, nil
	}
	ce := c.db.Classify(err)
	if ce.Class != dialect.ClassUniqueViolation {
		err = fmt.Errorf("racefree: %s: %w", c.verb, ce)
		if tx == nil && ce.Class == dialect.ClassConnection {
			// Outside a transaction the upsert commits on its own: cut
			// off with no answer, it may have inserted the row.
			err = &insertLostError{err: err}
		}
		return row, false, err
	}
	// Another unique index refused the row: the lookup's own row may be
	// the one it collided with (PostgreSQL checks the indexes one by one).
	row, found, err := updateRow[T](ctx, c, q, tx, true)
	if err != nil {
		return row, false, err
	}
	if !found {
		return row, false, fmt.Errorf("racefree: %s: %w", c.verb, ce)
	}
	c.observeLostRace(ctx, ce)
	return row, false, nil
}

// extraScanner appends one destination to every Scan: a column the
// statement returns after the row's.
type extraScanner struct {
	s     scanner
	extra any
}

func (e extraScanner) Scan(dest ...any) error { return e.s.Scan(append(dest, e.extra)...) }

// lockedUpsert is one attempt, in tx, of UpdateOrCreateFunc (update set)
// or of UpdateOrCreate with the lock and serializable strategies (values
// in the call): lock, read the current row with a row lock, then UPDATE it or
// INSERT it.
func lockedUpsert[T any](ctx context.Context, c *call, tx *Tx, update func(*T) (Values, error)) (row T, created bool, err error) {
	if c.strat == StrategyLock {
		if err := lockForGetOrCreate(ctx, tx, c.lockName()); err != nil {
			return row, false, err
		}
	}
	lock := ""
	if c.d.Features().Has(dialect.ForUpdate) {
		lock = " FOR UPDATE"
	}
	onConflict := true
	var violation *dialect.Error // the last INSERT's, when a unique index refused it
	for range maxVanished {
		cur, found, err := readRow[T](ctx, c, tx.tx, lock)
		if err != nil {
			return row, false, err
		}
		if found && (violation != nil || !onConflict) {
			c.observeLostRace(ctx, violation) // our INSERT lost the race to this row
		}
		if !found && violation != nil && !c.ownIndex(violation) {
			// The INSERT below collided with another row, not the lookup's.
			return row, false, fmt.Errorf("racefree: %s: %w", c.verb, violation)
		}
		w := c
		if update != nil { // UpdateOrCreateFunc: ask for the values
			var arg *T
			if found {
				arg = &cur
			}
			vals, err := update(arg)
			if err != nil {
				return row, false, err
			}
			if w, err = c.withValues(vals); err != nil {
				return row, false, err
			}
		}
		if found {
			if w.nset == 0 {
				return cur, false, nil
			}
			// The row is locked, so on MySQL the UPDATE matches it even when
			// it changes nothing (and then reports 0 rows): confirm reads it.
			row, found, err = updateRow[T](ctx, w, tx.tx, tx, true)
			if err != nil || found {
				return row, false, err
			}
			continue // deleted under us (SQLite has no row lock, but one writer)
		}
		row, created, violation, err = insertRow[T](ctx, w, tx.tx, tx, onConflict)
		if err != nil || created {
			return row, created, err
		}
		if violation == nil {
			onConflict = false // next time, ask the engine what conflicted
		} else if c.ownIndex(violation) && c.snapshotBlind(tx) {
			return row, false, c.errSnapshotBlind()
		}
		// Lost the race to create (a writer outside the lock protocol), or
		// another unique index refused the row: read again to tell.
	}
	return row, false, fmt.Errorf("racefree: %s: %w (%d attempts)", c.verb, ErrRowVanished, maxVanished)
}
