package racefree_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSide is one contender of a benchmark that alternates several.
type benchSide struct {
	name string
	op   func() error
}

// alternateRounds is how many rounds each side of alternateParallel runs.
// Many short rounds rather than a few long ones: on a small machine whose
// server shares the cores, load comes in bursts (a checkpoint, InnoDB's
// purge after a run that wrote many rows) that would otherwise land on
// one side's round.
const alternateRounds = 12

// alternateParallel runs b.N calls of each side with callers goroutines,
// in alternateRounds rounds per side taken in turn, in a rotating order,
// and returns each side's wall time per call: its rounds' time ÷ its
// calls. A call that fails fails the benchmark.
func alternateParallel(b *testing.B, callers int, sides []benchSide) []float64 {
	b.Helper()
	perRound := max(1, b.N/alternateRounds)
	spent := make([]time.Duration, len(sides))
	calls := make([]int64, len(sides))
	b.ResetTimer()
	for round := range alternateRounds * len(sides) {
		// Each cycle of rounds starts one side later, so that every side
		// follows every other equally often: a round that inherits the
		// previous side's state (its statements on the connections, the
		// server's work left over) does not always favour the same side.
		cycle, j := round/len(sides), round%len(sides)
		i := (cycle + j) % len(sides)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range callers {
			wg.Go(func() {
				for next.Add(1) <= int64(perRound) {
					if err := sides[i].op(); err != nil {
						b.Errorf("%s: %v", sides[i].name, err)
						return
					}
				}
			})
		}
		wg.Wait()
		spent[i] += time.Since(start)
		calls[i] += int64(perRound)
	}
	b.StopTimer()
	per := make([]float64, len(sides))
	for i := range sides {
		per[i] = float64(spent[i].Nanoseconds()) / float64(calls[i])
		b.ReportMetric(per[i], sides[i].name+"-ns/op")
	}
	return per
}
