package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/racefree/racefree/dialect"
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
	o, err := prepare[T](ctx, ex, verbUpdate, table, lookup, values, opts)
	if err != nil {
		return row, false, err
	}
	if o.nset == 0 {
		return row, false, inputError(o.verb, "no values to set (use GetOrCreate to only create)")
	}
	switch o.strat {
	case StrategyConstraint:
		attempt := func(ctx context.Context, tx *Tx) error {
			var err error
			row, created, err = upsertConstraint[T](ctx, o, o.h.q, tx)
			return err
		}
		if o.h.tx != nil {
			err = attempt(ctx, o.h.tx)
		} else {
			err = o.db.retry(ctx, o.opts.Tx, func(ctx context.Context) error { return attempt(ctx, nil) })
		}
		return row, created, err
	}
	err = o.inTx(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		row, created, err = lockedUpsert[T](ctx, o, tx, nil)
		return err
	})
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
	o, err := prepare[T](ctx, ex, verbUpdateFunc, table, lookup, nil, opts)
	if err != nil {
		return row, false, err
	}
	o.verb = verbUpdate + " " + table
	if update == nil {
		return row, false, inputError(o.verb, "nil update function")
	}
	err = o.inTx(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		row, created, err = lockedUpsert[T](ctx, o, tx, update)
		return err
	})
	return row, created, err
}

// setCols are the columns an update writes: the values (not the lookup,
// nor the create-only values), and setVals their values.
func (o *op) setCols() []string { return o.icols[len(o.lcols) : len(o.lcols)+o.nset] }
func (o *op) setVals() []any    { return o.ivals[len(o.lcols) : len(o.lcols)+o.nset] }

// withValues returns a copy of o whose values are vals (UpdateOrCreateFunc's
// update result), validated as prepare validates, keeping the lookup and
// the create-only values.
func (o *op) withValues(vals Values) (*op, error) {
	var bad badInput
	create := o.icols[len(o.lcols)+o.nset:]
	createVals := make(Values, len(create))
	for i, c := range create {
		createVals[c] = o.ivals[len(o.lcols)+o.nset+i]
	}
	cols, norm := o.columns(&bad, roleValues{roleSet, vals}, roleValues{roleLookup, o.lookupValues()}, roleValues{roleCreateOnly, createVals})
	if err := bad.err(o.verb); err != nil {
		return nil, err
	}
	c := *o
	c.icols = slices.Concat(o.lcols, cols, create)
	c.ivals = slices.Concat(o.lvals, norm, o.ivals[len(o.lcols)+o.nset:])
	c.nset = len(cols)
	c.missing = missingRequired(o.t.Table, c.icols)
	c.lazy = hasLazy(c.ivals)
	c.p = nil // the plan's statements have other columns
	return &c, nil
}

func (o *op) lookupValues() Values {
	v := make(Values, len(o.lcols))
	for i, c := range o.lcols {
		v[c] = o.lvals[i]
	}
	return v
}

// inTx runs fn in the caller's transaction, or in one begun here with
// retries. The lock strategy's transaction runs at READ COMMITTED, the
// serializable strategy's at SERIALIZABLE; the constraint strategy's at the
// server's default, which its locking reads make safe.
func (o *op) inTx(ctx context.Context, fn TxFunc) error {
	if o.h.tx != nil {
		if o.strat != StrategyConstraint {
			if err := o.checkCallerTx(ctx, o.h.tx); err != nil {
				return err
			}
		}
		return fn(ctx, o.h.tx)
	}
	txo := o.opts.Tx
	txo.ReadOnly = false
	txo.Isolation = sql.LevelDefault
	if !o.d.Features().Has(dialect.SingleWriter) {
		switch o.strat {
		case StrategySerializable:
			txo.Isolation = sql.LevelSerializable
		case StrategyLock, StrategyConstraint:
			txo.Isolation = sql.LevelReadCommitted
		}
	}
	if o.strat == StrategyLock {
		if err := prepareLocks(ctx, o.db); err != nil {
			return err
		}
	}
	return RunInTx(ctx, o.h.executor(), txo, fn)
}

// updateSQL is UPDATE t SET cols = … WHERE lookup, with RETURNING where
// the engine has UPDATE … RETURNING.
func (o *op) updateSQL(cols []string, vals []any, returning bool) (string, []any) {
	var b strings.Builder
	b.WriteString("UPDATE ")
	b.WriteString(o.qtable())
	b.WriteString(" SET ")
	args := make([]any, 0, len(vals)+len(o.lvals))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.t.ident(c))
		b.WriteString(" = ")
		args = append(args, vals[i])
		b.WriteString(o.d.Placeholder(len(args)))
	}
	args = append(args, o.writeWhere(&b, len(args))...)
	if returning {
		b.WriteString(" RETURNING ")
		o.writeQuoted(&b, o.c.quoted)
	}
	return b.String(), args
}

// upsertConstraint is one UpdateOrCreate with the constraint strategy.
func upsertConstraint[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx) (row T, created bool, err error) {
	if inserted, ok := o.upsertInserted(); ok && len(o.missing) == 0 && !hasLazy(o.ivals[len(o.lcols)+o.nset:]) {
		// One statement, when the engine can say whether it inserted and
		// the statement may insert: every column the row needs is given,
		// and no create-only value is Lazy (it would be computed for a row
		// that exists).
		return upsertOneStatement[T](ctx, o, q, tx, inserted)
	}
	row, found, err := updateRow[T](ctx, o, q, tx, false)
	if err != nil || found {
		return row, false, err
	}
	if len(o.missing) > 0 {
		// The row cannot be created. On MySQL an UPDATE that changed
		// nothing reports no row even when one matched: read to tell.
		if !o.d.Features().Has(dialect.UpdateReturning) {
			if row, found, err = read[T](ctx, o, q, o.rereadLock(tx)); err != nil || found {
				return row, false, err
			}
		}
		return row, false, o.checkInsert()
	}
	return createOr(ctx, o, q, tx, func(ctx context.Context) (T, bool, error) {
		// The row is there now, or another row clashes: apply the values
		// to the lookup's row if it exists.
		return updateRow[T](ctx, o, q, tx, true)
	})
}

// updateRow updates the row matching the lookup with the values and
// returns it; found is false when the UPDATE matched nothing. On MySQL,
// whose UPDATE counts changed rows rather than matched ones, an UPDATE
// that changed nothing reports nothing; with confirm, the row is then
// read (with the re-read's locking rules) to tell.
func updateRow[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, confirm bool) (row T, found bool, err error) {
	if err := o.beforeUpdate(ctx); err != nil {
		return row, false, err
	}
	cols, vals := o.setCols(), o.setVals()
	if o.d.Features().Has(dialect.UpdateReturning) {
		query, args := o.updateSQL(cols, vals, true)
		row, err = scanInto[T](o.c, q.QueryRow(ctx, query, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return row, false, nil
		}
		if err != nil {
			return row, false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
		}
		return row, true, nil
	}
	query, args := o.updateSQL(cols, vals, false)
	res, err := q.Exec(ctx, query, args...)
	if err != nil {
		return row, false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return row, false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
	}
	if n == 0 {
		if !confirm {
			return row, false, nil
		}
		return read[T](ctx, o, q, o.rereadLock(tx))
	}
	// The row is ours in a transaction; in autocommit this reads the
	// latest committed version, ours or a later writer's.
	return read[T](ctx, o, q, "")
}

// upsertInserted is the dialect's expression telling whether an upsert
// inserted its row (see dialect.UpsertFlagger), when it has one and ON
// CONFLICT (the constraint strategy always has a covering index).
func (o *op) upsertInserted() (string, bool) {
	uf, ok := o.d.(dialect.UpsertFlagger)
	if !ok || !o.d.Features().Has(dialect.OnConflict) || o.ix == nil {
		return "", false
	}
	key := ""
	for _, ix := range o.t.Unique {
		if col, found := o.t.Column(ix.Columns[0]); ix.Primary && found && !col.Nullable {
			key = o.t.ident(col.Name)
		}
	}
	return uf.UpsertInserted(key)
}

// upsertOneStatement is INSERT … ON CONFLICT (lookup) DO UPDATE …
// RETURNING …, inserted: the dialect's expression that says whether the
// row was inserted. A unique violation of another index is settled as
// createOr settles one: the lookup's row, if it exists, is updated
// instead.
func upsertOneStatement[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, inserted string) (row T, created bool, err error) {
	if err := o.beforeWrite(ctx); err != nil {
		return row, false, err
	}
	var b strings.Builder
	b.WriteString(o.insertSQLNoReturning())
	b.WriteString(" ON CONFLICT (")
	o.writeCols(&b, o.lcols)
	b.WriteString(") DO UPDATE SET ")
	for i, c := range o.setCols() {
		if i > 0 {
			b.WriteString(", ")
		}
		qc := o.t.ident(c)
		b.WriteString(qc + " = EXCLUDED." + qc)
	}
	b.WriteString(" RETURNING ")
	o.writeQuoted(&b, o.c.quoted)
	b.WriteString(", ")
	b.WriteString(inserted)
	query := b.String()
	do := func(ctx context.Context) error {
		var inserted bool
		row, err = scanInto[T](o.c, extraScanner{q.QueryRow(ctx, query, o.ivals...), &inserted})
		created = inserted
		return err
	}
	if tx != nil && o.d.Features().Has(dialect.FailedStatementAbortsTx) {
		err = tx.savepoint(ctx, do)
	} else {
		err = do(ctx)
	}
	if err == nil {
		return row, created, nil
	}
	ce := o.db.Classify(err)
	if ce.Class != dialect.ClassUniqueViolation {
		return row, false, fmt.Errorf("racefree: %s: %w", o.verb, ce)
	}
	// Another unique index refused the row: the lookup's own row may be
	// the one it collided with (PostgreSQL checks the indexes one by one).
	row, found, err := updateRow[T](ctx, o, q, tx, true)
	if err != nil {
		return row, false, err
	}
	if !found {
		return row, false, fmt.Errorf("racefree: %s: %w", o.verb, ce)
	}
	o.db.lostRaces.Add(1)
	return row, false, nil
}

// extraScanner appends one destination to every Scan: a column the
// statement returns after the row's.
type extraScanner struct {
	s     scanner
	extra any
}

func (e extraScanner) Scan(dest ...any) error { return e.s.Scan(append(dest, e.extra)...) }

// insertSQLNoReturning is the INSERT of lookup and values without ON
// CONFLICT or RETURNING.
func (o *op) insertSQLNoReturning() string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(o.qtable())
	b.WriteString(" (")
	o.writeCols(&b, o.icols)
	b.WriteString(") VALUES (")
	for i := range o.icols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.d.Placeholder(i + 1))
	}
	b.WriteString(")")
	return b.String()
}

// lockedUpsert is one attempt, in tx, of UpdateOrCreateFunc (update set)
// or of UpdateOrCreate with the lock and serializable strategies (values
// in o): lock, read the current row with a row lock, then UPDATE it or
// INSERT it.
func lockedUpsert[T any](ctx context.Context, o *op, tx *Tx, update func(*T) (Values, error)) (row T, created bool, err error) {
	if o.strat == StrategyLock {
		if err := lockForGetOrCreate(ctx, tx, o.lockName()); err != nil {
			return row, false, err
		}
	}
	lock := ""
	if o.d.Features().Has(dialect.ForUpdate) {
		lock = " FOR UPDATE"
	}
	onConflict := true
	var violation *dialect.Error // the last INSERT's, when a unique index refused it
	for range maxVanished {
		cur, found, err := read[T](ctx, o, tx.tx, lock)
		if err != nil {
			return row, false, err
		}
		if !found && violation != nil && !o.ownIndex(violation) {
			// The INSERT below collided with another row, not the lookup's.
			return row, false, fmt.Errorf("racefree: %s: %w", o.verb, violation)
		}
		w := o
		if update != nil { // UpdateOrCreateFunc: ask for the values
			var arg *T
			if found {
				arg = &cur
			}
			vals, err := update(arg)
			if err != nil {
				return row, false, err
			}
			if w, err = o.withValues(vals); err != nil {
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
		row, created, violation, err = insert[T](ctx, w, tx.tx, tx, onConflict)
		if err != nil || created {
			return row, created, err
		}
		if violation == nil {
			onConflict = false // next time, ask the engine what conflicted
		} else if o.ownIndex(violation) && o.snapshotBlind(tx) {
			return row, false, o.errSnapshotBlind()
		}
		// Lost the race to create (a writer outside the lock protocol), or
		// another unique index refused the row: read again to tell.
	}
	return row, false, fmt.Errorf("racefree: %s: %w (%d attempts)", o.verb, ErrRowVanished, maxVanished)
}
