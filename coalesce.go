package racefree

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
)

// Coalescing (Options.Coalesce): identical concurrent get-or-create calls
// on one *DB share one trip to the database. It only saves round trips under a storm on a
// hot key; the database still decides who creates the row, and a call
// that cannot share (another executor, an error) simply runs on its own.

// inflight is one call being made on behalf of everyone waiting for it.
type inflight struct {
	done    chan struct{}
	row     any // T, valid when err is nil
	created bool
	err     error
}

// coalesced counts the calls answered by another call's trip, for tests.
var coalesced atomic.Int64

// flights holds the calls in flight: flightKey → *inflight.
var flights sync.Map

type flightKey struct {
	db     *DB
	rt     reflect.Type
	table  string
	kind   string // the operation and strategy
	lookup string // encodeKey of the normalized lookup values and columns
}

// coalesce runs call once for all concurrent callers with the same key.
// Only the caller that ran it may report created: the others got the row
// someone else created. When the shared call fails, each waiter runs its
// own call, so that one caller's canceled context or deadline never fails
// another.
func coalesce[T any](ctx context.Context, o *op, kind string, call func() (T, bool, error)) (T, bool, error) {
	if !o.opts.Coalesce || o.h.tx != nil || o.h.conn != nil {
		return call() // a transaction or pinned connection is the caller's own
	}
	key := flightKey{db: o.db, rt: reflect.TypeFor[T](), table: o.t.Name, kind: kind,
		lookup: o.key("", false).lcols + "\x00" + encodeKey(o.lvals)}
	f := &inflight{done: make(chan struct{})}
	if v, loaded := flights.LoadOrStore(key, f); loaded {
		other := v.(*inflight)
		select {
		case <-other.done:
			if other.err == nil {
				coalesced.Add(1)
				return copyRow(other.row.(T)), false, nil
			}
		case <-ctx.Done():
			var zero T
			return zero, false, o.db.wrapErr(o.verb, ctx.Err())
		}
		return call()
	}
	defer func() {
		flights.Delete(key)
		close(f.done)
	}()
	row, created, err := call()
	f.row, f.created, f.err = row, created, err
	return row, created, err
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
