package racefree_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkTransferBatch measures several transfers in one transaction —
// RunInTx, LockRows on every key of the batch (ascending order), then
// Transfer for each, as ExampleTransfer_batch shows — against as many
// single transfers, per engine, on 10 (hot) and 1000 accounts. Every side
// keeps 16 transfers in flight: the hand-written transfer and Transfer
// with 16 goroutines of one transfer each, a batch of K with 16/K
// goroutines of K transfers each — what a service with 16 concurrent
// transfers could gather into batches.
//
// The sides run in alternating rounds, in a rotating order, so that load
// on the machine hits them alike. The benchmark reports each side's wall
// time per transfer (hand-ns, transfer-ns, batch-ns), x-raw = hand-written
// time ÷ batch time and x-transfer = Transfer's time ÷ batch time (above
// 1: the batch is faster). Balances are large enough that no transfer is
// declined; the sum of the balances is checked at the end.
//
// Run: go test -run '^$' -bench BenchmarkTransferBatch .
func BenchmarkTransferBatch(b *testing.B) {
	for _, e := range testdb.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			db := testdb.Open(b, e.DSN(b))
			db.SQL().SetMaxOpenConns(16)
			db.SQL().SetMaxIdleConns(16)
			for _, accounts := range []int{10, 1000} {
				b.Run("accounts="+strconv.Itoa(accounts), func(b *testing.B) {
					bal := mustBalances(b, db, accounts, 1_000_000_000_000)
					hand := handWrittenTransfer(db, bal)
					for _, k := range []int{4, 8} {
						b.Run("batch="+strconv.Itoa(k), func(b *testing.B) {
							one := func(op func(ctx context.Context, from, to, amount int64) error) func(ctx context.Context, r *rand.Rand) error {
								return func(ctx context.Context, r *rand.Rand) error {
									from, to := randomPair(r, accounts)
									return op(ctx, from, to, r.Int64N(100)+1)
								}
							}
							single := func(ctx context.Context, from, to, amount int64) error {
								return transfer(ctx, db, bal, from, to, amount, racefree.TransferOptions{})
							}
							batch := func(ctx context.Context, r *rand.Rand) error {
								moves := make([]move, k)
								for i := range moves {
									from, to := randomPair(r, accounts)
									moves[i] = move{from, to, r.Int64N(100) + 1}
								}
								declined, err := transferBatch(ctx, db, bal, moves)
								if err == nil && declined > 0 {
									err = errors.New("a transfer of the batch was declined")
								}
								return err
							}
							per := alternateTransfers(b, []transferSide{
								{"hand", 16, 1, one(hand)},
								{"transfer", 16, 1, one(single)},
								{"batch", 16 / k, k, batch},
							})
							b.ReportMetric(per[0], "hand-ns/transfer")
							b.ReportMetric(per[1], "transfer-ns/transfer")
							b.ReportMetric(per[2], "batch-ns/transfer")
							b.ReportMetric(per[0]/per[2], "x-raw")
							b.ReportMetric(per[1]/per[2], "x-transfer")
						})
					}
					sum := testdb.QueryInt(b, db, "SELECT SUM(balance) FROM "+bal.Table)
					if want := int64(accounts) * 1_000_000_000_000; sum != want {
						b.Fatalf("sum of balances %d, want %d", sum, want)
					}
				})
			}
		})
	}
}

// move is one transfer of a batch.
type move struct{ from, to, amount int64 }

// transferBatch runs moves in one transaction, as ExampleTransfer_batch
// does (raceBatch), and returns how many the floor declined.
func transferBatch(ctx context.Context, db *racefree.DB, bal target, moves []move) (declined int, err error) {
	for _, err := range raceBatch(ctx, db, bal, moves, racefree.TransferOptions{}) {
		switch {
		case errors.Is(err, racefree.ErrBelowFloor):
			declined++
		case err != nil:
			return declined, err
		}
	}
	return declined, nil
}

// randomPair returns two different accounts of 1…accounts.
func randomPair(r *rand.Rand, accounts int) (from, to int64) {
	from = r.Int64N(int64(accounts)) + 1
	to = r.Int64N(int64(accounts)-1) + 1
	if to >= from {
		to++
	}
	return from, to
}

// transferSide is one side of alternateTransfers: goroutines running op,
// each call of which makes per transfers.
type transferSide struct {
	name       string
	goroutines int
	per        int
	op         func(ctx context.Context, r *rand.Rand) error
}

// alternateTransfers makes b.N transfers on each side, in alternateRounds
// rounds per side taken in turn in a rotating order (as alternateParallel
// does), after an unmeasured warm-up of each, and returns each side's wall
// time per transfer in nanoseconds. A call that fails fails the benchmark.
func alternateTransfers(b *testing.B, sides []transferSide) []float64 {
	b.Helper()
	var seq atomic.Uint64
	round := func(s transferSide, transfers int) time.Duration {
		var left atomic.Int64
		left.Store(int64((transfers + s.per - 1) / s.per))
		var wg sync.WaitGroup
		start := time.Now()
		for range s.goroutines {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seq.Add(1), uint64(time.Now().UnixNano())))
				for left.Add(-1) >= 0 {
					if err := s.op(context.Background(), r); err != nil {
						b.Errorf("%s: %v", s.name, err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	for _, s := range sides {
		round(s, 4*16)
	}
	perRound := max(16, b.N/alternateRounds)
	spent := make([]time.Duration, len(sides))
	done := make([]int, len(sides))
	b.ResetTimer()
	for n := range alternateRounds * len(sides) {
		cycle, j := n/len(sides), n%len(sides)
		i := (cycle + j) % len(sides)
		spent[i] += round(sides[i], perRound)
		done[i] += (perRound + sides[i].per - 1) / sides[i].per * sides[i].per
	}
	b.StopTimer()
	per := make([]float64, len(sides))
	for i := range sides {
		per[i] = float64(spent[i].Nanoseconds()) / float64(done[i])
	}
	return per
}
