package racefree

import (
	"errors"
	"math"
	"sync/atomic"
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
	// Coalesce lets identical concurrent GetOrCreate and CreateOrGet calls
	// on one *DB (same table, result type and lookup) share one trip to
	// the database: the first runs, the others wait for its row and get
	// created == false (their defaults are not used, as if they had lost
	// the race). It saves round trips in a storm on a hot key, and costs a
	// little on every call, so it is off by default. Correctness never
	// depends on it: the database still decides who creates the row, and
	// when the shared call fails each waiter runs its own.
	Coalesce bool
	// CreateOnly holds values UpdateOrCreate and UpdateOrCreateFunc write
	// only when they create the row (Django's create_defaults): a creation
	// time, the user who created it. The row is created from the lookup,
	// the values and CreateOnly; an existing row gets the values only. A
	// column may not be in both. GetOrCreate, CreateOrGet and
	// GetOrCreateMany refuse it: their defaults are create-only already.
	CreateOnly Values
	// Tx configures the transaction that the lock and serializable
	// strategies begin when the executor is a *DB or *Conn, and the retries
	// of retryable errors (deadlocks, busy, serialization failures) of
	// statements run outside a transaction. Its Isolation is ignored: the
	// strategy sets it.
	Tx TxOptions
}

// Errors of the get-or-create family, for errors.Is.
var (
	// ErrNoCoveringIndex: StrategyConstraint was demanded, but no unique
	// index of the table covers exactly the lookup columns.
	ErrNoCoveringIndex = errors.New("racefree: no unique index covers exactly the lookup columns")
	// ErrNullLookup: a lookup value is NULL and the strategy cannot make
	// it unique (a unique index treats NULLs as distinct, except
	// PostgreSQL 15's NULLS NOT DISTINCT).
	ErrNullLookup = errors.New("racefree: NULL lookup value")
	// ErrRowVanished: the row a lost insert race collided with was deleted
	// before it could be read, again and again, until the bound on
	// attempts (maxVanished) was reached.
	ErrRowVanished = errors.New("racefree: the conflicting row kept vanishing before it could be read")
	// ErrStrategyUnavailable: the demanded strategy cannot work on this
	// engine or in this transaction (for example StrategySerializable on a
	// *Tx that is not SERIALIZABLE).
	ErrStrategyUnavailable = errors.New("racefree: strategy unavailable here")
)

// maxVanished bounds the loop "insert lost the race, the winner's row is
// gone before the re-read": each turn means a concurrent delete won, so a
// few turns is already an extreme workload.
const maxVanished = 16

// hitStat is the observed hit ratio of one (table, lookup columns), as an
// exponentially weighted moving average stored as float64 bits. It is
// updated without a lock: a lost update only delays adaptation, and
// correctness never depends on it.
type hitStat struct {
	bits atomic.Uint64
}

// hitAlpha is the weight of the newest observation: about the last 30 calls
// decide, so that a workload that changes is followed within a few dozen
// calls.
const hitAlpha = 1.0 / 32

// insertFirstBelow is the hit ratio under which insert-first wins. A hit
// costs one statement select-first and two insert-first (a failed INSERT,
// then a SELECT); a miss costs two and one. The crossover is 1/2; the
// failed INSERT costs more than the SELECT it replaces (it writes a WAL
// record or takes locks), so the switch happens a little below.
const insertFirstBelow = 0.4

func (s *hitStat) ratio() float64 { return math.Float64frombits(s.bits.Load()) }

func (s *hitStat) observe(hit bool) {
	x := 0.0
	if hit {
		x = 1
	}
	old := s.bits.Load()
	r := math.Float64frombits(old)
	s.bits.CompareAndSwap(old, math.Float64bits(r+(x-r)*hitAlpha))
}

func (db *DB) hitStat(key string) *hitStat {
	if v, ok := db.hitStats.Load(key); ok {
		return v.(*hitStat)
	}
	s := &hitStat{}
	s.bits.Store(math.Float64bits(1)) // start select-first: hits are the common case
	v, _ := db.hitStats.LoadOrStore(key, s)
	return v.(*hitStat)
}
