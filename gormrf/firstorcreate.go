package gormrf

import (
	"context"
	"slices"

	"gorm.io/gorm"

	"github.com/racefree/racefree"
)

// FirstOrCreate reads the row of M's table that matches lookup into dest,
// creating it first if there is none, from lookup and attrs (GORM's
// Attrs: used only for a new row). created is true only for the one caller
// whose INSERT made the row, however many goroutines, processes or
// machines ask for the same lookup at once; a caller that lost the race
// gets the winner's row and no error.
//
// It is racefree.GetOrCreate on the model's table and columns (see the
// package doc for how lookup, attrs and the new row's values are made): a
// hit is one SELECT, a miss one INSERT … ON CONFLICT DO NOTHING RETURNING
// (or INSERT … RETURNING on MariaDB) when a unique index covers exactly the
// lookup columns, and otherwise racefree's named lock decides.
//
// db may be the pool or bound to a transaction (db.Transaction, db.Begin,
// RunInTx): racefree joins it and never commits or rolls it back. ctx
// governs the statements. Bad input returns an error matching
// racefree.ErrInvalidInput before anything is sent; database errors are
// racefree's, classified (racefree.ErrUniqueViolation for a conflict on
// another unique index, …).
func FirstOrCreate[M any](ctx context.Context, db *gorm.DB, dest *M, lookup, attrs any) (created bool, err error) {
	const verb = "first or create"
	ex, m, err := begin(ctx, db, verb, dest, lookup)
	if err != nil {
		return false, err
	}
	attrCols, err := m.apply(ctx, attrs, "attrs")
	if err != nil {
		return false, err
	}
	if err := m.checkOverlap(attrCols, "attrs"); err != nil {
		return false, err
	}
	defaults, err := m.createValues(ctx)
	if err != nil {
		return false, err
	}
	row, created, err := racefree.GetOrCreate[racefree.Values](ctx, ex, m.table, m.lookupValues(ctx), defaults, optionsOf(db))
	if err != nil {
		return false, err
	}
	return created, m.fill(ctx, dest, row)
}

// UpdateOrCreate writes assign (GORM's Assign) on the row of M's table
// that matches lookup, or creates the row from lookup and assign if there is
// none, and reads the row as it is afterwards into dest. created is true
// only for the caller whose INSERT made the row. An update sets the
// assigned columns and the autoUpdateTime fields (UpdatedAt); a new row
// gets what FirstOrCreate would insert with assign as its attrs
// (CreatedAt included).
//
// It is racefree.UpdateOrCreateFunc: inside a transaction (db's, or one
// begun and retried here) the matching row is locked from the read to the
// write, so concurrent calls apply one after the other and none is lost or
// fails. It is not racefree.UpdateOrCreate's single upsert statement,
// because GORM writes columns on create (CreatedAt, zero values, defaults)
// that an update must leave alone, and that statement takes one set of
// values for both.
func UpdateOrCreate[M any](ctx context.Context, db *gorm.DB, dest *M, lookup, assign any) (created bool, err error) {
	const verb = "update or create"
	ex, m, err := begin(ctx, db, verb, dest, lookup)
	if err != nil {
		return false, err
	}
	assigned, err := m.apply(ctx, assign, "assignments")
	if err != nil {
		return false, err
	}
	if len(assigned) == 0 {
		return false, inputError(m.verb, "nothing to assign (use FirstOrCreate to only create)")
	}
	if err := m.checkOverlap(assigned, "assignments"); err != nil {
		return false, err
	}
	update, err := m.updateValues(ctx, assigned)
	if err != nil {
		return false, err
	}
	insert, err := m.createValues(ctx)
	if err != nil {
		return false, err
	}
	row, created, err := racefree.UpdateOrCreateFunc(ctx, ex, m.table, m.lookupValues(ctx),
		func(cur *racefree.Values) (racefree.Values, error) {
			if cur == nil {
				return insert, nil
			}
			return update, nil
		}, optionsOf(db))
	if err != nil {
		return false, err
	}
	return created, m.fill(ctx, dest, row)
}

// begin resolves db's executor and dialect and applies the lookup.
func begin(ctx context.Context, db *gorm.DB, verb string, dest any, lookup any) (racefree.Executor, *model, error) {
	ex, err := Executor(db)
	if err != nil {
		return nil, nil, err
	}
	if db.Statement != nil {
		if _, ok := db.Statement.Clauses["WHERE"]; ok {
			// Silently dropping them would look up another row than the
			// caller means.
			return nil, nil, inputError(verb, "db carries Where conditions, which gormrf does not read: pass them as the lookup")
		}
		if len(db.Statement.Selects) > 0 || len(db.Statement.Omits) > 0 {
			return nil, nil, inputError(verb, "db carries Select or Omit, which gormrf does not apply: put the columns a new row gets in the lookup and attrs")
		}
	}
	m, err := newModel(db, verb, dest, ex.Dialect().Name())
	if err != nil {
		return nil, nil, err
	}
	if err := m.setLookup(ctx, db, lookup); err != nil {
		return nil, nil, err
	}
	return ex, m, nil
}

// checkOverlap refuses columns given both in the lookup and in the attrs
// or assignments: the lookup alone decides the row.
func (m *model) checkOverlap(cols []string, what string) error {
	for _, c := range cols {
		if slices.Contains(m.lookup, c) {
			return inputError(m.verb, "column %q is in both the lookup and the %s", c, what)
		}
	}
	return nil
}
