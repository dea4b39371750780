package racefree

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// Explanation is how the get-or-create family decides who creates a row,
// for one table and set of lookup columns on one database: what
// StrategyAuto picks and why. Explain returns it; racefree doctor prints
// it. It is the library's own planning, not a copy of its rules.
type Explanation struct {
	// Table and Lookup are what was explained; Server is the engine.
	Table  string
	Lookup []string
	Server string
	// Strategy is what StrategyAuto picks when no lookup value is NULL,
	// StrategyWithNull when one is.
	Strategy, StrategyWithNull Strategy
	// Index is the unique index (or primary key) that covers exactly the
	// lookup columns and decides races under the constraint strategy, or
	// nil when there is none.
	Index *dialect.UniqueIndex
	// Nullable are the lookup columns that accept NULL.
	Nullable []string
	// Narrower are unique indexes over some of the lookup columns only:
	// they also refuse rows the lookup tells apart, and a violation of
	// one may be a lost race (racefree re-reads to tell). Wider are unique
	// indexes over the lookup columns and more: they do not make the
	// lookup unique.
	Narrower, Wider []dialect.UniqueIndex
	// Reason says in plain words why the strategies are what they are.
	Reason string
}

// Explain reads table from the catalog (as the first get-or-create call on
// it would) and tells how calls looking rows up by the lookup columns
// decide who creates a row. An unknown table or column, or a name the
// engine cannot take, is an error matching ErrInvalidInput. ctx governs
// the catalog read.
func Explain(ctx context.Context, db *DB, table string, lookup ...string) (Explanation, error) {
	const verb = "explain"
	if db == nil || db.pool == nil {
		return Explanation{}, fmt.Errorf("racefree: %s: %w", verb, errNilExecutor)
	}
	if len(lookup) == 0 {
		return Explanation{}, inputError(verb, "empty lookup: at least one column must identify the row")
	}
	t, err := db.table(ctx, db.pool, verb, table)
	if err != nil {
		return Explanation{}, err
	}
	cols := slices.Clone(lookup)
	slices.Sort(cols)
	cols = slices.Compact(cols)
	var bad badInput
	var nullable []string
	for _, name := range cols {
		col, ok := t.Column(name)
		switch {
		case !ok:
			bad.unknown = append(bad.unknown, name)
		case col.Nullable:
			nullable = append(nullable, name)
		}
	}
	if err := bad.err(verb + " " + table); err != nil {
		return Explanation{}, err
	}
	c := &call{verb: verb + " " + table, db: db, d: db.d, t: t, lcols: cols, ix: coveringIndex(t.Table, cols)}
	e := Explanation{Table: table, Lookup: cols, Server: db.d.Server(), Index: c.ix, Nullable: nullable}
	if e.Strategy, err = c.resolve(StrategyAuto); err != nil {
		return Explanation{}, err
	}
	c.null = true
	if e.StrategyWithNull, err = c.resolve(StrategyAuto); err != nil {
		return Explanation{}, err
	}
	for _, ix := range t.Unique {
		switch {
		case c.ix != nil && ix.Name == c.ix.Name:
		case len(ix.Columns) < len(cols) && subsetOf(ix.Columns, cols):
			e.Narrower = append(e.Narrower, ix)
		case len(ix.Columns) > len(cols) && subsetOf(cols, ix.Columns):
			e.Wider = append(e.Wider, ix)
		}
	}
	e.Reason = e.reason(db.d)
	return e, nil
}

// reason puts the decision in plain words.
func (e *Explanation) reason(d dialect.Dialect) string {
	lookup := strings.Join(e.Lookup, ", ")
	switch {
	case e.Index != nil && e.Strategy == StrategyConstraint && e.StrategyWithNull == StrategyConstraint:
		return fmt.Sprintf("the unique index %s covers exactly (%s) and treats NULLs as equal: it decides every race, and a lost race is answered with the winner's row", e.Index.Name, lookup)
	case e.Index != nil && e.Strategy == StrategyConstraint && len(e.Nullable) == 0:
		return fmt.Sprintf("the unique index %s covers exactly (%s), whose columns are NOT NULL: it decides every race, and a lost race is answered with the winner's row", e.Index.Name, lookup)
	case e.Index != nil && e.Strategy == StrategyConstraint:
		return fmt.Sprintf("the unique index %s covers exactly (%s) and decides races on lookups without NULLs; it treats NULLs as distinct, so a lookup with a NULL in %s takes the %v strategy", e.Index.Name, lookup, strings.Join(e.Nullable, ", "), e.StrategyWithNull)
	case e.Strategy == StrategySerializable:
		return fmt.Sprintf("no unique index covers exactly (%s); %s detects conflicts optimistically, so a SERIALIZABLE transaction, retried, decides", lookup, d.Server())
	}
	return fmt.Sprintf("no unique index covers exactly (%s): a named lock on (table, lookup values), held by a short transaction around the read and the insert, decides; a unique index on exactly these columns would make a miss one statement", lookup)
}

// subsetOf reports whether every element of a is in b.
func subsetOf(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
