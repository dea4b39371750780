package racefree

import (
	"context"
	"fmt"
)

// Lazy is a value computed only when a row is written with it: put it in
// the defaults of GetOrCreate, CreateOrGet or GetOrCreateMany, or in the
// values or Options.CreateOnly of UpdateOrCreate, where a constant would
// cost too much to compute on every call (a new API token, a slug that
// needs a query, a hashed password):
//
//	racefree.Values{"token": racefree.Lazy(func(ctx context.Context) (any, error) {
//		return newToken(ctx)
//	})}
//
// A hit never calls it. A call that writes calls each of its Lazy values
// at most once, just before the first statement that writes them, with
// the call's context; the result is checked against the column like any
// other value. If it returns an error, the call returns that error
// (wrapped; errors.Is finds it) and nothing is written. When the call runs
// again (RunInTx retrying the transaction it is in, say), it calls it
// again. A lookup value cannot be Lazy: it is needed to find the row.
type Lazy func(ctx context.Context) (any, error)

// hasLazy reports whether any of vals is Lazy.
func hasLazy(vals []any) bool {
	for _, v := range vals {
		if _, ok := v.(Lazy); ok {
			return true
		}
	}
	return false
}

// resolveLazy replaces, in vals (the values of cols), every Lazy value by
// what it returns, normalized and checked as any value is. vals belongs to
// one call, so a value computed once is reused if the call writes again.
func (c *call) resolveLazy(ctx context.Context, cols []string, vals []any) error {
	for i, v := range vals {
		lz, ok := v.(Lazy)
		if !ok {
			continue
		}
		if lz == nil {
			return inputError(c.verb, "column %q: nil Lazy", cols[i])
		}
		got, err := lz(ctx)
		if err != nil {
			return fmt.Errorf("racefree: %s: compute value of column %q: %w", c.verb, cols[i], err)
		}
		if _, again := got.(Lazy); again {
			return inputError(c.verb, "column %q: a Lazy value returned another Lazy", cols[i])
		}
		col, _ := c.t.Column(cols[i])
		if got, err = normalizeFam(c.verb, col, c.t.valueFam(cols[i]), got); err != nil {
			return err
		}
		if got == nil && !col.Nullable {
			return inputError(c.verb, "column %q is NOT NULL and its Lazy value returned nil", cols[i])
		}
		vals[i] = got
	}
	return nil
}
