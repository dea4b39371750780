package racefree

import (
	"fmt"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// Strategy is how a get-or-create operation makes sure that exactly one row
// exists per lookup when many workers race.
type Strategy uint8

const (
	// StrategyAuto follows the schema, read from the engine's catalog: the
	// constraint strategy when a unique index covers exactly the lookup
	// columns and no lookup value is NULL (or the index treats NULLs as
	// equal); otherwise the lock strategy, except on engines built around
	// optimistic conflict detection (CockroachDB, TiDB), where it is the
	// serializable strategy.
	StrategyAuto Strategy = iota
	// StrategyConstraint lets a unique index decide: SELECT, and on a miss
	// one INSERT whose conflict on the lookup's own index is a lost race,
	// answered by reading the winner's row. Demanding it where no unique
	// index covers exactly the lookup columns is an error wrapping
	// ErrNoCoveringIndex, never silent duplicates.
	StrategyConstraint
	// StrategyLock takes a named lock on (table, lookup columns, lookup
	// values) with LockNamed for the rest of a transaction, then SELECTs
	// and INSERTs: pg_advisory_xact_lock on PostgreSQL, a row lock in
	// racefree_locks on MySQL/MariaDB, the write transaction itself on
	// SQLite. It needs no index and
	// handles NULL lookups. On a *DB or *Conn it runs in its own short
	// transaction; on a *Tx the lock is held until that transaction ends.
	StrategyLock
	// StrategySerializable runs SELECT and INSERT in a SERIALIZABLE
	// transaction and lets the engine's conflict detection, with retries,
	// decide. On a *Tx the transaction must already be SERIALIZABLE. It is
	// refused on a MariaDB Galera cluster without a covering unique index:
	// there SERIALIZABLE is per node, and two nodes inserting the same
	// lookup as two different rows never conflict.
	StrategySerializable
)

func (s Strategy) String() string {
	switch s {
	case StrategyAuto:
		return "auto"
	case StrategyConstraint:
		return "constraint"
	case StrategyLock:
		return "lock"
	case StrategySerializable:
		return "serializable"
	}
	return "unknown strategy"
}

// Options configure one get-or-create family call. The zero value is the
// sensible default: StrategyAuto, the operation's own order (select-first
// for GetOrCreate, insert-first for CreateOrGet), default retries.
type Options struct {
	// Strategy demands one strategy; StrategyAuto follows the schema.
	Strategy Strategy
	// Adaptive lets racefree choose select-first or insert-first per
	// (table, lookup columns) from the hit ratio it has observed on this
	// DB: mostly hits read first (a hit is one SELECT), mostly misses
	// insert first (a miss is one INSERT). It applies to the constraint
	// strategy, the only one where the order matters.
	Adaptive bool
	// NoCoalesce turns coalescing off for this call. Coalescing is on by
	// default: identical concurrent GetOrCreate calls (and CreateOrGet
	// calls) on one *DB — same table, result type, columns and lookup
	// values — share one trip to the database: the first runs, the others
	// wait for its row and return a copy of it with created == false
	// (their defaults are not used, as if they had lost the race). It
	// saves round trips in a storm on a hot key and costs a call alone
	// nothing measurable. It never applies on a *Tx or *Conn (the
	// caller's own session), nor on an embedded engine (SQLite), where the
	// call costs less than a hand-off between goroutines. Correctness never
	// depends on it: the database still decides who creates the row, and
	// when the shared call fails each waiter runs its own.
	NoCoalesce bool
	// CreateOnly holds values UpdateOrCreate and UpdateOrCreateFunc write
	// only when they create the row (Django's create_defaults): a creation
	// time, the user who created it. The row is created from the lookup,
	// the values and CreateOnly; an existing row gets the values only. A
	// column may not be in both. GetOrCreate, CreateOrGet and
	// GetOrCreateMany refuse it: their defaults are create-only already.
	CreateOnly Values
	// Retry decides whether and when the call runs again after a
	// retryable failure where it runs on its own — on a *DB or *Conn:
	// deadlocks, busy errors, serialization failures, a lost connection
	// (on the pool), the transaction of the lock and serializable
	// strategies. nil is Backoff{}. Inside a *Tx nothing is retried on its
	// own: the caller's RunInTx retries the whole transaction.
	Retry RetryPolicy
}

// maxVanished bounds the loop "insert lost the race, the winner's row is
// gone before the re-read": each turn means a concurrent delete won, so a
// few turns is already an extreme workload.
const maxVanished = 16

// resolve picks the strategy, or explains why the demanded one cannot work.
func (c *call) resolve(s Strategy) (Strategy, error) {
	switch s {
	case StrategyAuto:
		switch {
		case c.ix != nil && (!c.null || c.ix.NullsNotDistinct):
			return StrategyConstraint, nil
		case c.d.Features().Has(dialect.ClientRetries | dialect.SerializableIsolation):
			// CockroachDB runs every transaction with optimistic conflict
			// detection at SERIALIZABLE anyway: let it decide. (TiDB's
			// optimistic mode has no SERIALIZABLE: its snapshot isolation
			// does not conflict two inserts of different rows.)
			return StrategySerializable, nil
		}
		return StrategyLock, nil
	case StrategyConstraint:
		if c.ix == nil {
			return 0, fmt.Errorf("racefree: %s: %w (%s); add UNIQUE (%s) or use StrategyLock",
				c.verb, ErrNoCoveringIndex, strings.Join(c.lcols, ", "), strings.Join(c.lcols, ", "))
		}
		if c.null && !c.ix.NullsNotDistinct {
			return 0, fmt.Errorf("racefree: %s: %w: unique index %s treats NULLs as distinct, so it cannot keep NULL lookups unique; use StrategyLock or a NULLS NOT DISTINCT index",
				c.verb, ErrNullLookup, c.ix.Name)
		}
		return s, nil
	case StrategySerializable:
		if !c.d.Features().Has(dialect.SerializableIsolation) {
			return 0, fmt.Errorf("racefree: %s: %w: %s has no SERIALIZABLE isolation; use StrategyLock or a unique index",
				c.verb, ErrStrategyUnavailable, c.d.Server())
		}
		if c.d.Features().Has(dialect.NodeLocalNamedLocks) && !(c.ix != nil && (!c.null || c.ix.NullsNotDistinct)) {
			// Galera certifies only write-write conflicts on the same
			// rows: two nodes inserting the same lookup as two different
			// rows never conflict (measured: duplicates). Only a unique
			// index or the lock strategy's certified lock row works there.
			return 0, fmt.Errorf("racefree: %s: %w: on %s SERIALIZABLE is per node, so it cannot keep a lookup unique without a unique index; use StrategyLock",
				c.verb, ErrStrategyUnavailable, c.d.Server())
		}
		return s, nil
	case StrategyLock:
		return s, nil
	}
	return 0, inputError(c.verb, "unknown strategy %d", s)
}
