package pgxrf_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestTransfer_Pgx: racefree.Transfer on a pgx pool, in one statement, and
// inside racefree's transaction over pgx.
func TestTransfer_Pgx(t *testing.T) {
	_, check, db, _ := open(t, 4)
	ctx := context.Background()
	table := testdb.CreateTable(t, check, "pgxrf_transfer", "id BIGINT PRIMARY KEY, balance NUMERIC(12,2) NOT NULL CHECK (balance >= 0)")
	testdb.Exec(t, check, "INSERT INTO "+table+" (id, balance) VALUES (1, 100), (2, 0)")
	must(t, racefree.Transfer(ctx, db, table, "balance", 1, 2, "60.50", racefree.TransferOptions{}))
	if err := racefree.Transfer(ctx, db, table, "balance", 1, 2, 40, racefree.TransferOptions{}); !errors.Is(err, racefree.ErrBelowFloor) {
		t.Fatalf("39.50 left, 40 asked: got %v, want ErrBelowFloor", err)
	}
	must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return racefree.Transfer(ctx, tx, table, "balance", 2, 1, "0.50", racefree.TransferOptions{})
	}))
	if got := testdb.QueryInt(t, check, "SELECT CAST(balance * 100 AS BIGINT) FROM "+table+" WHERE id = 1"); got != 4000 {
		t.Fatalf("balance of 1 = %d hundredths, want 4000", got)
	}
}

// sharedLocks counts, from what went over the wire, the statements that
// lock the rows of a shared transaction's transfers (a transfer alone
// sends one WITH statement that locks its own two rows).
type sharedLocks struct{ n atomic.Int64 }

func (s *sharedLocks) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(data.SQL, "SELECT") && strings.HasSuffix(data.SQL, "FOR NO KEY UPDATE") {
		s.n.Add(1)
	}
	return ctx
}

func (s *sharedLocks) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestTransfer_PgxSharedCommits: 64 goroutines move random amounts among
// four hot accounts on a pgx pool, so that transfers queue behind busy rows
// and share commits (racefree's transactions over pgx, their rows locked
// by one statement). The sum is kept,
// no balance goes below the floor, every transfer moved or was declined.
func TestTransfer_PgxSharedCommits(t *testing.T) {
	defer testdb.Watchdog(t, 120*time.Second)()
	e, check, _, _ := open(t, 8)
	locks := &sharedLocks{}
	db := mustDB(t, mustPool(t, e.DSN(t), 8, locks))
	table := testdb.CreateTable(t, check, "pgxrf_shared", "id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0)")
	testdb.Exec(t, check, "INSERT INTO "+table+" (id, balance) VALUES (1, 1000), (2, 1000), (3, 1000), (4, 1000)")
	const goroutines, each, floor = 64, 16, 50
	var moved, declined atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range each {
				from := r.Int64N(4) + 1
				to := (from+r.Int64N(3))%4 + 1
				err := racefree.Transfer(context.Background(), db, table, "balance", from, to, r.Int64N(1500)+1, racefree.TransferOptions{Floor: floor})
				switch {
				case err == nil:
					moved.Add(1)
				case errors.Is(err, racefree.ErrBelowFloor):
					declined.Add(1)
				default:
					t.Errorf("transfer %d → %d: %v", from, to, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if sum := testdb.QueryInt(t, check, "SELECT SUM(balance) FROM "+table); sum != 4000 {
		t.Fatalf("sum of balances %d, want 4000", sum)
	}
	if low := testdb.QueryInt(t, check, "SELECT MIN(balance) FROM "+table); low < floor {
		t.Fatalf("a balance is %d, below the floor %d", low, floor)
	}
	if moved.Load()+declined.Load() != goroutines*each || moved.Load() == 0 || declined.Load() == 0 {
		t.Fatalf("%d moved, %d declined, want %d transfers, some of each", moved.Load(), declined.Load(), goroutines*each)
	}
	if locks.n.Load() == 0 {
		t.Fatal("no shared transaction locked rows: no transfer queued behind a busy row")
	}
	t.Logf("%d moved, %d declined, %d shared transactions; sum conserved, no balance below %d", moved.Load(), declined.Load(), locks.n.Load(), floor)
}
