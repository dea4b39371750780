package racefree

import "context"

// CreateOrGet is GetOrCreate for workloads where most lookups are new: it
// inserts first, so a miss costs one statement (INSERT … ON CONFLICT DO
// NOTHING RETURNING, or INSERT … RETURNING on MariaDB) and a hit two (the
// INSERT that found the row, then a SELECT). Its guarantees are
// GetOrCreate's: exactly one row per lookup, created true for exactly one
// caller, a lost race never an error, the same recovery rules.
//
// On MariaDB and MySQL every hit is a failed INSERT, which costs an
// auto-increment value; on PostgreSQL it costs a sequence value when the
// table has one. With Options.Adaptive, CreateOrGet and GetOrCreate both
// switch between insert-first and select-first by the hit ratio they
// observe on this DB for the table and lookup columns.
//
// The lock and serializable strategies always read first: inside their
// lock or transaction the order does not change the round trips.
func CreateOrGet[T any](ctx context.Context, ex Executor, table string, lookup, defaults Values, opts Options) (row T, created bool, err error) {
	c, err := planCall[T](ctx, ex, "create or get", table, lookup, defaults, opts)
	if err != nil {
		return row, false, err
	}
	insertFirst := true
	if opts.Adaptive {
		insertFirst = c.db.hitStat(c.statKey()).ratio() < insertFirstBelow
	}
	return coalesce[T](ctx, c, insertFirst)
}
