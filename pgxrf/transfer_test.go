package pgxrf_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
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
// sends one WITH statement that locks its own two rows), and the combined
// statements of transfers on distinct rows.
type sharedLocks struct{ n, combined atomic.Int64 }

func (s *sharedLocks) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	switch {
	case strings.HasPrefix(data.SQL, "SELECT") && strings.HasSuffix(data.SQL, "FOR NO KEY UPDATE"):
		s.n.Add(1)
	case strings.HasPrefix(data.SQL, "WITH racefree_types AS"):
		s.combined.Add(1)
	}
	return ctx
}

func (s *sharedLocks) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestTransfer_PgxSharedCommits: 64 goroutines move random amounts on a
// pgx pool, among four hot accounts, so that transfers queue behind busy
// rows and share commits (racefree's transactions over pgx, their rows
// locked by one statement), and among 200, where queued transfers on
// distinct rows run as combined statements (their keys and amounts bound
// as pgx arrays). The sum is kept, no balance goes below the floor, every
// transfer moved or was declined.
func TestTransfer_PgxSharedCommits(t *testing.T) {
	for _, accounts := range []int64{4, 200} {
		t.Run(strconv.FormatInt(accounts, 10)+" accounts", func(t *testing.T) { pgxSharedCommits(t, accounts) })
	}
}

func pgxSharedCommits(t *testing.T, accounts int64) {
	defer testdb.Watchdog(t, 120*time.Second)()
	e, check, _, _ := open(t, 8)
	locks := &sharedLocks{}
	db := mustDB(t, mustPool(t, e.DSN(t), 8, locks))
	table := testdb.CreateTable(t, check, "pgxrf_shared", "id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0)")
	testdb.Exec(t, check, "INSERT INTO "+table+" (id, balance) SELECT g, 1000 FROM generate_series(1, "+strconv.FormatInt(accounts, 10)+") g")
	const goroutines, each, floor = 64, 16, 50
	var moved, declined atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range each {
				from := r.Int64N(accounts) + 1
				to := (from+r.Int64N(accounts-1))%accounts + 1
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
	if sum := testdb.QueryInt(t, check, "SELECT SUM(balance) FROM "+table); sum != 1000*accounts {
		t.Fatalf("sum of balances %d, want %d", sum, 1000*accounts)
	}
	if low := testdb.QueryInt(t, check, "SELECT MIN(balance) FROM "+table); low < floor {
		t.Fatalf("a balance is %d, below the floor %d", low, floor)
	}
	if moved.Load()+declined.Load() != goroutines*each || moved.Load() == 0 || declined.Load() == 0 {
		t.Fatalf("%d moved, %d declined, want %d transfers, some of each", moved.Load(), declined.Load(), goroutines*each)
	}
	switch {
	case accounts < 10 && locks.n.Load() == 0:
		t.Fatal("no shared transaction locked rows: no transfer queued behind a busy row")
	case accounts >= 10 && locks.combined.Load() == 0:
		t.Fatal("no combined statement went over the wire: no transfers on distinct rows queued together")
	}
	t.Logf("%d accounts: %d moved, %d declined, %d shared transactions, %d combined statements; sum conserved, no balance below %d",
		accounts, moved.Load(), declined.Load(), locks.n.Load(), locks.combined.Load(), floor)
}
