package racefree

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync"

	"github.com/racefree/racefree/dialect"
)

// Coalescing: identical concurrent GetOrCreate and CreateOrGet calls on
// one *DB — same plan (table, result type, verb, columns) and lookup
// values — share one trip to the database. The first runs; the others wait
// for its row and return it with created false, as if they had lost the
// race (their defaults are not used). It saves round trips in a storm on
// a hot key, where dozens of callers would otherwise each send the same
// SELECT; the database still decides who creates a row. It is on by
// default (Options.NoCoalesce turns it off) wherever a trip to the
// database costs more than a hand-off between goroutines: not on an
// embedded engine (SQLite), where the call runs in-process, and never on a
// *Tx or *Conn, which are the caller's own session.
//
// A call alone pays one shard's lock twice and a small allocation: no
// goroutine, no channel (made only when a second caller arrives), nothing
// every call writes.

// coalesceShards spreads the calls in flight over independent locks, so
// that callers on different keys rarely meet.
const coalesceShards = 64

// coalescer holds the calls in flight on one DB.
type coalescer struct {
	seed   maphash.Seed
	once   sync.Once // sets seed
	shards [coalesceShards]coalesceShard
}

type coalesceShard struct {
	mu sync.Mutex         // guards m and the flights' done and waiters
	m  map[string]*flight // key → the call in flight
}

// flight is one call in flight and, once it returns, its result.
type flight struct {
	done    chan struct{} // made when a second caller arrives; closed when the call returns
	waiters int
	row     any
	err     error
}

// coalesce executes c once for all concurrent callers with the same key.
// Only the caller that ran it may report created: the others got the row
// someone else created. When the shared call fails, each waiter runs its
// own, so that one caller's canceled context or deadline never fails
// another.
func coalesce[T any](ctx context.Context, c *call, insertFirst bool) (T, bool, error) {
	if c.opts.NoCoalesce || !c.h.onPool() || c.d.Features().Has(dialect.Embedded) || c.p == nil {
		// A transaction or pinned connection is the caller's own; an
		// embedded engine answers faster than a hand-off; an unplanned
		// call (a NULL lookup, a first call) is rare.
		return execute[T](ctx, c, insertFirst)
	}
	key := c.flightKey()
	co := &c.db.flights
	co.once.Do(func() { co.seed = maphash.MakeSeed() })
	sh := &co.shards[maphash.String(co.seed, key)%coalesceShards]

	sh.mu.Lock()
	if f, ok := sh.m[key]; ok {
		if f.done == nil {
			f.done = make(chan struct{})
		}
		f.waiters++
		done := f.done
		sh.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			var zero T
			return zero, false, c.db.wrapErr(c.verb, ctx.Err())
		}
		if f.err != nil {
			return execute[T](ctx, c, insertFirst)
		}
		c.db.coalesced.Add(1)
		return copyRow(f.row.(T)), false, nil
	}
	f := &flight{}
	if sh.m == nil {
		sh.m = make(map[string]*flight)
	}
	sh.m[key] = f
	sh.mu.Unlock()

	row, created, err := execute[T](ctx, c, insertFirst)

	sh.mu.Lock()
	delete(sh.m, key)
	if f.done != nil {
		// The result is written before done closes, and read after.
		f.row, f.err = any(row), err
		close(f.done)
	}
	sh.mu.Unlock()
	return row, created, err
}

// flightKey identifies calls that may share one trip: the plan (table,
// result type, verb, strategy, columns) and the normalized lookup values.
// A plan belongs to one DB.
func (c *call) flightKey() string {
	b := make([]byte, 0, 48)
	b = strconv.AppendUint(b, c.p.id, 36)
	b = append(b, ':')
	return string(appendKey(b, c.lvals))
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
