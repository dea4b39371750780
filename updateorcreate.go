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
// creates the row from lookup and values if there is none, and returns the
// row as it is afterwards. created is true only for the caller whose INSERT
// made the row. The values are constants, so no update is lost: each
// caller's values are applied whole, in the order the engine serializes
// the writes (the last writer wins, as with any UPDATE). For values
// computed from the current row, use UpdateOrCreateFunc.
//
// With the constraint strategy the work is one statement on PostgreSQL
// (INSERT … ON CONFLICT DO UPDATE … RETURNING, created read from the
// system column xmax), and on SQLite and MySQL/MariaDB an UPDATE first and,
// when it matched nothing, an INSERT whose lost race goes back to the
// UPDATE. MySQL's INSERT … ON DUPLICATE KEY UPDATE is never used: a
// conflict on any other unique index would silently update that other row.
// The lock and serializable strategies read, then UPDATE or INSERT, in a
// transaction. The recovery rules, the executors and the errors are those
// of GetOrCreate.
func UpdateOrCreate[T any](ctx context.Context, ex Executor, table string, lookup, values Values, opts Options) (row T, created bool, err error) {
	o, err := prepare[T](ctx, ex, "update or create", table, lookup, values, opts)
	if err != nil {
		return row, false, err
	}
	if len(o.icols) == len(o.lcols) {
		return row, false, inputError(o.verb, "no values to set (use GetOrCreate to only create)")
	}
	upd := o.setCols()
	switch o.strat {
	case StrategyConstraint:
		attempt := func(ctx context.Context, tx *Tx) error {
			var err error
			row, created, err = upsertConstraint[T](ctx, o, o.h.q, tx, upd)
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
		row, created, err = lockedUpsert[T](ctx, o, tx, func(*T) (Values, error) { return nil, nil }, upd)
		return err
	})
	return row, created, err
}

// UpdateOrCreateFunc is UpdateOrCreate for new values computed from the
// current row: inside a transaction (the caller's *Tx, or one begun here
// and retried on serialization failures and deadlocks) it locks the row
// matching lookup (SELECT … FOR UPDATE; SQLite's write transaction), calls
// update with it, or with nil when there is none, and writes what update
// returns: an UPDATE of those columns, or an INSERT of lookup and those
// columns. Because the row is locked from the read to the write, two
// concurrent calls apply one after the other: no update is lost. With no
// unique index covering the lookup, the lock strategy's named lock covers
// the case where the row does not exist yet.
//
// update may run more than once when the transaction is retried; it must
// not have side effects outside the database. An error from update aborts
// the call and is returned as it is.
func UpdateOrCreateFunc[T any](ctx context.Context, ex Executor, table string, lookup Values, update func(current *T) (Values, error), opts Options) (row T, created bool, err error) {
	o, err := prepare[T](ctx, ex, verbUpdateFunc, table, lookup, nil, opts)
	if err != nil {
		return row, false, err
	}
	o.verb = "update or create " + table
	if update == nil {
		return row, false, inputError(o.verb, "nil update function")
	}
	err = o.inTx(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		row, created, err = lockedUpsert[T](ctx, o, tx, update, nil)
		return err
	})
	return row, created, err
}

// setCols are the columns an update writes: the insert columns that are
// not lookup columns.
func (o *op) setCols() []string { return o.icols[len(o.lcols):] }

// withValues returns a copy of o whose insert columns are the lookup and
// vals, validated as prepare validates.
func (o *op) withValues(vals Values) (*op, error) {
	cols, norm, err := o.columns(vals, o.lookupValues())
	if err != nil {
		return nil, err
	}
	c := *o
	c.icols = append(slices.Clone(o.lcols), cols...)
	c.ivals = append(slices.Clone(o.lvals), norm...)
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
	if o.d.Name() != "sqlite" {
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
		q, _ := o.d.Quote(c)
		b.WriteString(q)
		b.WriteString(" = ")
		args = append(args, vals[i])
		b.WriteString(o.d.Placeholder(len(args)))
	}
	args = append(args, o.writeWhere(&b, len(args))...)
	if returning {
		b.WriteString(" RETURNING ")
		o.writeCols(&b, o.c.cols)
	}
	return b.String(), args
}

// upsertConstraint is one UpdateOrCreate with the constraint strategy.
func upsertConstraint[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, upd []string) (row T, created bool, err error) {
	if o.d.Name() == "postgres" {
		return upsertPG[T](ctx, o, q, tx, upd)
	}
	updVals := o.ivals[len(o.lcols):]
	for range maxVanished {
		row, found, err := updateRow[T](ctx, o, q, tx, upd, updVals)
		if err != nil || found {
			return row, false, err
		}
		row, created, lost, err := insert[T](ctx, o, q, tx, true)
		if err != nil || created {
			return row, created, err
		}
		if lost && o.d.Name() == "mysql" {
			// MySQL's UPDATE counts changed rows, not matched ones: the row
			// may have been there with the same values all along. Apply
			// the update again (it changes nothing or what a concurrent
			// writer changed) and read the row with the recovery rules.
			row, found, err = updateRow[T](ctx, o, q, tx, upd, updVals)
			if err != nil || found {
				return row, false, err
			}
			row, found, err = read[T](ctx, o, q, o.rereadLock(tx))
			if err != nil || found {
				return row, false, err
			}
		}
		if o.snapshotBlind(tx) {
			return row, false, o.errSnapshotBlind()
		}
	}
	return row, false, fmt.Errorf("racefree: %s: %w (%d attempts)", o.verb, ErrRowVanished, maxVanished)
}

// updateRow updates the row matching the lookup and returns it; found is
// false when the UPDATE matched nothing (on MySQL: changed nothing).
func updateRow[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, cols []string, vals []any) (row T, found bool, err error) {
	if o.d.Features().Has(dialect.UpdateReturning) {
		query, args := o.updateSQL(cols, vals, true)
		row, err = scanInto[T](o.c, q.QueryRowContext(ctx, query, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return row, false, nil
		}
		if err != nil {
			return row, false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
		}
		return row, true, nil
	}
	query, args := o.updateSQL(cols, vals, false)
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return row, false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return row, false, err
	}
	// The row is ours in a transaction; in autocommit this reads the
	// latest committed version, ours or a later writer's.
	return read[T](ctx, o, q, "")
}

// upsertPG is INSERT … ON CONFLICT DO UPDATE … RETURNING …, (xmax = 0): a
// freshly inserted tuple has no deleting or locking transaction, an
// updated one carries ours.
func upsertPG[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, upd []string) (row T, created bool, err error) {
	var b strings.Builder
	b.WriteString(o.insertSQLNoReturning())
	b.WriteString(" ON CONFLICT (")
	o.writeCols(&b, o.lcols)
	b.WriteString(") DO UPDATE SET ")
	for i, c := range upd {
		if i > 0 {
			b.WriteString(", ")
		}
		qc, _ := o.d.Quote(c)
		b.WriteString(qc + " = EXCLUDED." + qc)
	}
	b.WriteString(" RETURNING ")
	o.writeCols(&b, o.c.cols)
	b.WriteString(", (xmax = 0)")
	query := b.String()
	do := func(ctx context.Context) error {
		var inserted bool
		row, err = scanInto[T](o.c, extraScanner{q.QueryRowContext(ctx, query, o.ivals...), &inserted})
		created = inserted
		return err
	}
	if tx != nil {
		err = tx.savepoint(ctx, do)
	} else {
		err = do(ctx)
	}
	if err != nil {
		return row, false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
	}
	return row, created, nil
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
// or of UpdateOrCreate with the lock and serializable strategies (upd set,
// values in o): lock, read the current row with a row lock, then UPDATE it
// or INSERT it.
func lockedUpsert[T any](ctx context.Context, o *op, tx *Tx, update func(*T) (Values, error), upd []string) (row T, created bool, err error) {
	if o.strat == StrategyLock {
		if err := lockForGetOrCreate(ctx, tx, o.lockName()); err != nil {
			return row, false, err
		}
	}
	lock := ""
	if o.d.Features().Has(dialect.ForUpdate) {
		lock = " FOR UPDATE"
	}
	for range maxVanished {
		cur, found, err := read[T](ctx, o, tx.tx, lock)
		if err != nil {
			return row, false, err
		}
		w := o
		if upd == nil { // UpdateOrCreateFunc: ask for the values
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
			cols := w.setCols()
			if len(cols) == 0 {
				return cur, false, nil
			}
			if w.d.Features().Has(dialect.UpdateReturning) {
				row, found, err = updateRow[T](ctx, w, tx.tx, tx, cols, w.ivals[len(w.lcols):])
			} else {
				// MySQL: the row is locked, so the UPDATE matches it even
				// when it changes nothing (and then reports 0 rows).
				query, args := w.updateSQL(cols, w.ivals[len(w.lcols):], false)
				if _, err = tx.tx.ExecContext(ctx, query, args...); err != nil {
					return row, false, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
				}
				row, found, err = read[T](ctx, w, tx.tx, "")
			}
			if err != nil || found {
				return row, false, err
			}
			continue // deleted under us (SQLite has no row lock, but one writer)
		}
		if err := w.checkRequired(); err != nil {
			return row, false, err
		}
		row, created, lost, err := insert[T](ctx, w, tx.tx, tx, w.ix != nil && (!w.null || w.ix.NullsNotDistinct))
		if err != nil || created {
			return row, created, err
		}
		if lost && o.snapshotBlind(tx) {
			return row, false, o.errSnapshotBlind()
		}
		// Lost the race to create: lock the winner's row and go round.
	}
	return row, false, fmt.Errorf("racefree: %s: %w (%d attempts)", o.verb, ErrRowVanished, maxVanished)
}
