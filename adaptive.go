package racefree

import (
	"math"
	"sync/atomic"
)

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
