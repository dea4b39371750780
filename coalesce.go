package racefree

import (
	"context"
	"fmt"
	"reflect"
)

// Coalescing (Options.Coalesce): identical concurrent get-or-create calls
// on one *DB share one trip to the database. It only saves round trips under a storm on a
// hot key; the database still decides who creates the row, and a call
// that cannot share (another executor, an error) simply runs on its own.

// flightKey identifies calls that may share one trip: same DB, result
// type, table, operation and strategy, and normalized lookup.
func flightKey[T any](c *call, kind string) string {
	return fmt.Sprintf("%v\x00%s\x00%s\x00%s\x00%s", reflect.TypeFor[T](), c.t.Name, kind,
		c.key("", false).lcols, encodeKey(c.lvals))
}

// coalesce runs call once for all concurrent callers with the same key.
// Only the caller that ran it may report created: the others got the row
// someone else created. When the shared call fails, each waiter runs its
// own call, so that one caller's canceled context or deadline never fails
// another.
func coalesce[T any](ctx context.Context, c *call, kind string, call func() (T, bool, error)) (T, bool, error) {
	if !c.opts.Coalesce || c.h.tx != nil || c.h.conn != nil {
		return call() // a transaction or pinned connection is the caller's own
	}
	type result struct {
		row     T
		created bool
	}
	// ran is written only by this caller's own function, which runs only
	// if this caller leads; the channel receive orders it before the read.
	ran := false
	ch := c.db.flights.DoChan(flightKey[T](c, kind), func() (any, error) {
		ran = true
		row, created, err := call()
		return result{row, created}, err
	})
	var zero T
	select {
	case r := <-ch:
		switch {
		case ran:
			res := r.Val.(result)
			return res.row, res.created, r.Err
		case r.Err != nil:
			return call()
		}
		c.db.coalesced.Add(1)
		return copyRow(r.Val.(result).row), false, nil
	case <-ctx.Done():
		return zero, false, c.db.wrapErr(c.verb, ctx.Err())
	}
}

// copyRow gives a waiter its own copy of a Values row, so that callers
// never share a map.
func copyRow[T any](row T) T {
	if m, ok := any(row).(Values); ok {
		c := make(Values, len(m))
		for k, v := range m {
			c[k] = v
		}
		return any(c).(T)
	}
	if m, ok := any(row).(map[string]any); ok {
		c := make(map[string]any, len(m))
		for k, v := range m {
			c[k] = v
		}
		return any(c).(T)
	}
	return row
}
