package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/session"
)

// The tests of shared commits (transfer_share.go) make the queue happen on
// purpose: a transaction of the test's own holds a row, the first transfer
// of it waits in the database while holding the row in its process, and
// the transfers started after it find the row busy and queue. Releasing
// the row lets the first finish and the queued ones share a transaction.

// sharingEngines runs fn on each engine whose transfers share commits.
func sharingEngines(t *testing.T, fn func(t *testing.T, db *racefree.DB)) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := testdb.Open(t, e.DSN(t))
		if !db.Dialect().Features().Has(dialect.SharedCommits) {
			t.Skipf("%s does not share commits", db.Dialect().Server())
		}
		fn(t, db)
	})
}

// holdRow locks row id of table in a transaction of its own until the
// returned function is called; on an engine with one writer it holds the
// write lock, which holds every row.
func holdRow(t *testing.T, db *racefree.DB, table string, id int64) (release func()) {
	t.Helper()
	return holdWhere(t, db, table, "id = "+strconv.FormatInt(id, 10))
}

// holdWhere is holdRow for the rows where says.
func holdWhere(t *testing.T, db *racefree.DB, table, where string) (release func()) {
	t.Helper()
	tx, err := db.SQL().BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lock := "SELECT 1 FROM " + table + " WHERE " + where + " FOR UPDATE"
	if singleWriter(db) {
		lock = "UPDATE " + table + " SET balance = balance WHERE " + where
	}
	if _, err := tx.Exec(lock); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// singleWriter reports whether db's engine has one writer (SQLite).
func singleWriter(db *racefree.DB) bool {
	return db.Dialect().Features().Has(dialect.SingleWriter)
}

// needRowLocks skips t on an engine with one writer, where the test's two
// locks held apart cannot be had.
func needRowLocks(t *testing.T, db *racefree.DB) {
	if singleWriter(db) {
		t.Skipf("%s locks the whole database, not rows", db.Dialect().Server())
	}
}

// waitQueued waits until n transfers wait in db's queues.
func waitQueued(t *testing.T, db *racefree.DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		queued, _ := racefree.TransfersQueued(db)
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d transfers queued, want %d", queued, n)
		}
	}
}

// waitLockWaiters waits until n sessions wait for a row lock on table; on
// an engine that does not show lock waits (SQLite), until the process
// has a transfer in flight.
func waitLockWaiters(t *testing.T, db *racefree.DB, table string, n int64) {
	t.Helper()
	q := lockWaitQuery(db, table)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, busy := racefree.TransfersQueued(db); q == "" && busy > 0 {
			return
		}
		if q != "" && testdb.QueryInt(t, db, q) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d sessions wait for a lock on %s", n, table)
		}
	}
}

// blockFirst holds row 1 of b and starts a transfer of 10 from 1 to 2,
// which waits for it in the database while it holds rows 1 and 2 in its
// process: transfers of those rows started next queue. release lets it
// go; its error arrives on first.
func blockFirst(t *testing.T, db *racefree.DB, b target) (release func(), first <-chan error) {
	t.Helper()
	release = holdRow(t, db, b.Table, 1)
	first = startTransfer(context.Background(), db, b, 1, 2, 10, racefree.TransferOptions{})
	waitLockWaiters(t, db, b.Table, 1)
	return release, first
}

// startTransfer runs one transfer on db in a goroutine; its error arrives
// on the channel.
func startTransfer(ctx context.Context, db *racefree.DB, b target, from, to, amount int64, opts racefree.TransferOptions) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- transfer(ctx, db, b, from, to, amount, opts) }()
	return ch
}

// Transfers queued behind a busy row commit together, each with its own
// outcome: the floor declines those the balance cannot pay, the others
// move.
func TestTransferShare_OwnOutcomes(t *testing.T) {
	sharingEngines(t, func(t *testing.T, db *racefree.DB) {
		b := mustBalances(t, db, 3, 100)
		release, first := blockFirst(t, db, b)
		const queued = 12
		var errs [queued]<-chan error
		for i := range errs {
			errs[i] = startTransfer(context.Background(), db, b, 1, 3, 10, racefree.TransferOptions{})
		}
		waitQueued(t, db, queued)
		release()
		if err := <-first; err != nil {
			t.Fatalf("first transfer: %v", err)
		}
		moved, declined := 0, 0
		for _, ch := range errs {
			switch err := <-ch; {
			case err == nil:
				moved++
			case errors.Is(err, racefree.ErrBelowFloor):
				declined++
			default:
				t.Fatalf("queued transfer: %v", err)
			}
		}
		// 100 pays the first 10 and 9 of the queued ones.
		if moved != 9 || declined != queued-9 {
			t.Fatalf("%d moved, %d declined; want 9 and %d", moved, declined, queued-9)
		}
		shared, txs, failed := racefree.TransferSharing(db)
		if shared != queued || txs != 1 || failed != 0 {
			t.Fatalf("%d transfers in %d shared commits (%d failed), want %d in 1", shared, txs, failed, queued)
		}
		if got := testdb.QueryInt(t, db, "SELECT balance FROM "+b.Table+" WHERE id = 3"); got != 190 {
			t.Fatalf("balance of 3 is %d, want 190", got)
		}
		mustSum(t, db, b, 300)
	})
}

// A shared transaction one transfer makes fail commits nothing: each of
// its transfers then runs alone, so that the failure is only its own.
func TestTransferShare_FailureIsOwn(t *testing.T) {
	sharingEngines(t, func(t *testing.T, db *racefree.DB) {
		b := mustBalancesDDL(t, db, 4, 100, "id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance <= 150)")
		release, first := blockFirst(t, db, b)
		good := startTransfer(context.Background(), db, b, 1, 3, 10, racefree.TransferOptions{})
		bad := startTransfer(context.Background(), db, b, 2, 4, 60, racefree.TransferOptions{}) // 4 would hold 160
		waitQueued(t, db, 2)
		release()
		if err := <-first; err != nil {
			t.Fatalf("first transfer: %v", err)
		}
		if err := <-good; err != nil {
			t.Fatalf("the transfer beside the failing one: %v", err)
		}
		if err := <-bad; err == nil || errors.Is(err, racefree.ErrBelowFloor) {
			t.Fatalf("the transfer that breaks the CHECK: %v, want its constraint's error", err)
		}
		if _, txs, failed := racefree.TransferSharing(db); txs != 0 || failed != 1 {
			t.Fatalf("%d shared commits, %d failed; want 0 and 1", txs, failed)
		}
		for id, want := range map[int64]int64{1: 80, 2: 110, 3: 110, 4: 100} {
			if got := testdb.QueryInt(t, db, "SELECT balance FROM "+b.Table+" WHERE id = "+strconv.FormatInt(id, 10)); got != want {
				t.Errorf("balance of %d is %d, want %d", id, got, want)
			}
		}
	})
}

// A context that ends while its transfer waits to be taken returns at
// once, having sent nothing; once the shared transaction has taken it, the
// outcome is unknown: here it commits after its caller gave up.
func TestTransferShare_Canceled(t *testing.T) {
	sharingEngines(t, func(t *testing.T, db *racefree.DB) {
		needRowLocks(t, db)
		b := mustBalances(t, db, 4, 100)
		release1, first := blockFirst(t, db, b)

		// Waiting, not taken: canceled, nothing sent.
		ctx, cancel := context.WithCancel(context.Background())
		gone := startTransfer(ctx, db, b, 2, 3, 1, racefree.TransferOptions{})
		waitQueued(t, db, 1)
		cancel()
		err := <-gone
		if !errors.Is(err, context.Canceled) || errors.Is(err, racefree.ErrCommitUnknown) {
			t.Fatalf("canceled while queued: %v, want context.Canceled and no unknown outcome", err)
		}
		waitQueued(t, db, 0)

		// Taken: the shared transaction waits for row 3; its first
		// caller gives up, the second does not.
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		taken := startTransfer(ctx, db, b, 2, 3, 5, racefree.TransferOptions{})
		stays := startTransfer(context.Background(), db, b, 2, 4, 5, racefree.TransferOptions{})
		waitQueued(t, db, 2)
		release3 := holdRow(t, db, b.Table, 3)
		release1()
		if err := <-first; err != nil {
			t.Fatalf("first transfer: %v", err)
		}
		waitLockWaiters(t, db, b.Table, 1) // the shared transaction's LockRows
		cancel()
		if err := <-taken; !errors.Is(err, racefree.ErrCommitUnknown) {
			t.Fatalf("canceled after the shared transaction took it: %v, want ErrCommitUnknown", err)
		}
		release3()
		if err := <-stays; err != nil {
			t.Fatalf("the other transfer of the shared transaction: %v", err)
		}
		if got := testdb.QueryInt(t, db, "SELECT balance FROM "+b.Table+" WHERE id = 3"); got != 105 {
			t.Fatalf("balance of 3 is %d, want 105: the transfer whose caller gave up committed with the other", got)
		}
		mustSum(t, db, b, 400)
	})
}

// When every caller of a shared transaction gives up, it ends: its locks
// are released and nothing moves.
func TestTransferShare_AllCanceled(t *testing.T) {
	sharingEngines(t, func(t *testing.T, db *racefree.DB) {
		needRowLocks(t, db)
		b := mustBalances(t, db, 4, 100)
		release1, first := blockFirst(t, db, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := startTransfer(ctx, db, b, 2, 3, 5, racefree.TransferOptions{})
		c := startTransfer(ctx, db, b, 2, 4, 5, racefree.TransferOptions{})
		waitQueued(t, db, 2)
		release3 := holdRow(t, db, b.Table, 3)
		defer release3()
		release1()
		if err := <-first; err != nil {
			t.Fatalf("first transfer: %v", err)
		}
		waitLockWaiters(t, db, b.Table, 1)
		cancel()
		for _, ch := range []<-chan error{a, c} {
			if err := <-ch; !errors.Is(err, racefree.ErrCommitUnknown) {
				t.Fatalf("canceled after the shared transaction took it: %v, want ErrCommitUnknown", err)
			}
		}
		// The shared transaction ends without waiting for row 3: a new
		// transfer of rows 2 and 4 goes through while row 3 is still held.
		if err := transfer(context.Background(), db, b, 2, 4, 1, racefree.TransferOptions{Alone: true}); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, _, failed := racefree.TransferSharing(db); failed == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the shared transaction did not end when its callers gave up")
			}
		}
		for id, want := range map[int64]int64{2: 109, 3: 100, 4: 101} {
			if got := testdb.QueryInt(t, db, "SELECT balance FROM "+b.Table+" WHERE id = "+strconv.FormatInt(id, 10)); got != want {
				t.Errorf("balance of %d is %d, want %d", id, got, want)
			}
		}
	})
}

// TransferOptions.Alone keeps a transfer out of shared transactions.
func TestTransferShare_Alone(t *testing.T) {
	sharingEngines(t, func(t *testing.T, db *racefree.DB) {
		needRowLocks(t, db) // four transfers waiting cannot be seen on SQLite
		b := mustBalances(t, db, 3, 100)
		release := holdRow(t, db, b.Table, 1)
		alone := racefree.TransferOptions{Alone: true}
		var chs []<-chan error
		for range 4 {
			chs = append(chs, startTransfer(context.Background(), db, b, 1, 2, 10, alone))
		}
		waitLockWaiters(t, db, b.Table, 4)
		if n, _ := racefree.TransfersQueued(db); n != 0 {
			t.Fatalf("%d transfers queued with Alone", n)
		}
		release()
		for _, ch := range chs {
			if err := <-ch; err != nil {
				t.Fatal(err)
			}
		}
		if shared, txs, _ := racefree.TransferSharing(db); shared != 0 || txs != 0 {
			t.Fatalf("%d transfers shared %d commits with Alone", shared, txs)
		}
		mustSum(t, db, b, 300)
	})
}

// mustSum checks the sum of b's balances.
func mustSum(t *testing.T, db *racefree.DB, b target, want int64) {
	t.Helper()
	if sum := testdb.QueryInt(t, db, "SELECT SUM(balance) FROM "+b.Table); sum != want {
		t.Fatalf("sum of balances %d, want %d", sum, want)
	}
}

// A shared transaction whose COMMIT lost its answer is settled by asking
// the server: committed, each of its transfers succeeds; never committed,
// each runs alone. Either way every transfer moves exactly once and no
// caller is left in doubt.
func TestTransferShare_LostCommit(t *testing.T) {
	sharingEngines(t, func(t *testing.T, base *racefree.DB) {
		if _, ok := base.Dialect().(dialect.CommitResolver); !ok {
			t.Skipf("%s cannot say what became of a transaction", base.Dialect().Server())
		}
		for _, tc := range []struct {
			name      string
			f         fault
			committed bool
		}{
			{"commit lost before it ran", lostBefore, false},
			{"commit lost after it ran", lostAfter, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				fp := &commitFaultPool{Pool: session.SQLPool{DB: base.SQL()}}
				db, err := racefree.NewSession(context.Background(), fp, base.Dialect())
				if err != nil {
					t.Fatal(err)
				}
				b := mustBalances(t, base, 3, 100)
				release := holdRow(t, base, b.Table, 1)
				first := startTransfer(context.Background(), db, b, 1, 2, 10, racefree.TransferOptions{})
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
					if _, busy := racefree.TransfersQueued(db); busy > 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the first transfer never started")
					}
				}
				var queued []<-chan error
				for range 3 {
					queued = append(queued, startTransfer(context.Background(), db, b, 1, 3, 10, racefree.TransferOptions{}))
				}
				waitQueued(t, db, 3)
				fp.mu.Lock()
				fp.plan = tc.f // the next COMMIT: the shared transaction's
				fp.mu.Unlock()
				release()
				for _, ch := range append(queued, first) {
					if err := <-ch; err != nil {
						t.Fatalf("transfer: %v", err)
					}
				}
				if fp.faults != 1 {
					t.Fatalf("%d faults injected, want 1", fp.faults)
				}
				_, txs, failed := racefree.TransferSharing(db)
				if tc.committed && (txs != 1 || failed != 0) || !tc.committed && (txs != 0 || failed != 1) {
					t.Fatalf("%d shared commits, %d failed", txs, failed)
				}
				for id, want := range map[int64]int64{1: 60, 2: 110, 3: 130} {
					if got := testdb.QueryInt(t, base, "SELECT balance FROM "+b.Table+" WHERE id = "+strconv.FormatInt(id, 10)); got != want {
						t.Errorf("balance of %d is %d, want %d", id, got, want)
					}
				}
			})
		}
	})
}

// Text keys share commits too: the lock statement binds them as one array
// of the key column's type, here of a key column that is not "id".
func TestTransferShare_TextKeys(t *testing.T) {
	sharingEngines(t, func(t *testing.T, db *racefree.DB) {
		table := testdb.CreateTable(t, db, "rf_share_text", "code VARCHAR(20) NOT NULL PRIMARY KEY, balance BIGINT NOT NULL")
		testdb.Exec(t, db, "INSERT INTO "+table+" (code, balance) VALUES ('a', 100), ('b', 100), ('c', 100)")
		opts := racefree.TransferOptions{KeyColumn: "code"}
		move := func(from, to string) <-chan error {
			ch := make(chan error, 1)
			go func() { ch <- racefree.Transfer(context.Background(), db, table, "balance", from, to, 10, opts) }()
			return ch
		}
		release := holdWhere(t, db, table, "code = 'a'")
		first := move("a", "b")
		waitLockWaiters(t, db, table, 1)
		var queued []<-chan error
		for range 5 {
			queued = append(queued, move("a", "c"))
		}
		waitQueued(t, db, 5)
		release()
		for _, ch := range append(queued, first) {
			if err := <-ch; err != nil {
				t.Fatalf("transfer: %v", err)
			}
		}
		if shared, txs, failed := racefree.TransferSharing(db); shared != 5 || txs != 1 || failed != 0 {
			t.Fatalf("%d transfers in %d shared commits, %d failed; want 5 in 1", shared, txs, failed)
		}
		if got := testdb.QueryInt(t, db, "SELECT balance FROM "+table+" WHERE code = 'c'"); got != 150 {
			t.Fatalf("balance of c is %d, want 150", got)
		}
	})
}

// A shared transaction locks its rows no more strongly than a transfer
// does: rows of another table that reference them (a foreign key, whose
// check takes a KEY SHARE lock on PostgreSQL) can be inserted while it
// holds them.
func TestTransferShare_ForeignKeys(t *testing.T) {
	sharingEngines(t, func(t *testing.T, db *racefree.DB) {
		needRowLocks(t, db)
		b := mustBalances(t, db, 4, 100)
		child := testdb.CreateTable(t, db, "rf_share_child", "id BIGINT NOT NULL PRIMARY KEY, account BIGINT NOT NULL REFERENCES "+b.Table+" (id)")
		release1, first := blockFirst(t, db, b)
		shared := []<-chan error{
			startTransfer(context.Background(), db, b, 2, 3, 5, racefree.TransferOptions{}),
			startTransfer(context.Background(), db, b, 2, 4, 5, racefree.TransferOptions{}),
		}
		waitQueued(t, db, 2)
		release4 := holdRow(t, db, b.Table, 4)
		release1()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		waitLockWaiters(t, db, b.Table, 1) // the shared transaction holds 2 and 3, waits for 4
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := db.SQL().ExecContext(ctx, "INSERT INTO "+child+" (id, account) VALUES (1, 2), (2, 3)"); err != nil {
			t.Fatalf("insert rows referencing the shared transaction's rows: %v", err)
		}
		release4()
		for _, ch := range shared {
			if err := <-ch; err != nil {
				t.Fatal(err)
			}
		}
		if _, txs, _ := racefree.TransferSharing(db); txs != 1 {
			t.Fatalf("%d shared commits, want 1", txs)
		}
	})
}

// A shared transaction is observed: one EventSharedCommit with its table,
// its number of transfers and how long it took; one that failed carries
// its error.
func TestTransferShare_Observed(t *testing.T) {
	sharingEngines(t, func(t *testing.T, base *racefree.DB) {
		rec := &recorder{}
		db, err := racefree.New(context.Background(), base.SQL(), base.Dialect(), racefree.WithObserver(rec))
		if err != nil {
			t.Fatal(err)
		}
		b := mustBalancesDDL(t, base, 4, 100, "id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance <= 150)")
		// 60 breaks the CHECK on 4: the second round fails. Four of the five
		// transfers share row 1, so that they share a transaction rather
		// than a combined statement (takeDistinct).
		for round, amounts := range [][]int64{{10, 10, 10, 10, 10}, {10, 60, 10, 10, 10}} {
			release := holdRow(t, base, b.Table, 1)
			first := startTransfer(context.Background(), db, b, 1, 2, 1, racefree.TransferOptions{})
			waitLockWaiters(t, db, b.Table, 1)
			var queued []<-chan error
			for i, amount := range amounts {
				from, to := int64(1), int64(3)
				if i == 1 {
					from, to = 2, 4
				}
				queued = append(queued, startTransfer(context.Background(), db, b, from, to, amount, racefree.TransferOptions{}))
			}
			waitQueued(t, db, len(amounts))
			release()
			for _, ch := range append(queued, first) {
				<-ch
			}
			var shared []racefree.Event
			for _, e := range rec.snapshot() {
				if e.Kind == racefree.EventSharedCommit {
					shared = append(shared, e)
				}
			}
			if len(shared) != round+1 {
				t.Fatalf("%d shared-commit events after round %d, want %d", len(shared), round, round+1)
			}
			e := shared[round]
			if e.Table != b.Table || e.Verb != "transfer" || e.Transfers != len(amounts) || e.Held <= 0 || e.Engine == "" {
				t.Fatalf("event %+v: want table %s, verb transfer, %d transfers, a duration", e, b.Table, len(amounts))
			}
			if failed := round == 1; (e.Err != nil) != failed {
				t.Fatalf("round %d: event error %v, want failed %v", round, e.Err, failed)
			}
		}
	})
}

// Transfers queued on distinct rows run as one combined statement where
// the engine has one (PostgreSQL), on the shapes key and value columns
// take: each keeps its own outcome (moved, declined by the floor, a
// missing row), and the amounts moved are exact. Seven transfers wait on
// held rows, so that the eighth transfer at work makes the lane limit its
// flights (combineFrom) and the next ones queue although their rows are
// free.
func TestTransferShare_Combined(t *testing.T) {
	shapes := []struct {
		name, ddl string
		keys      []any // 21 rows, and a 22nd key that names none
		amount    any   // what the moving transfers move
		cents     int64 // amount in hundredths
		tooMuch   any   // what the declined one asks, of amount's type (a statement binds one type)
	}{
		{"bigint keys", "id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL", intKeys(22), int64(7), 700, int64(1000)},
		{"django serial id, numeric(12,2)", "id SERIAL PRIMARY KEY, balance NUMERIC(12, 2) NOT NULL", intKeys(22), "2.50", 250, "100.01"},
		{"uuid keys, integer balance", "id UUID NOT NULL PRIMARY KEY, balance INTEGER NOT NULL", uuidKeys(22), int64(7), 700, int64(101)},
		{"varchar keys", "id VARCHAR(36) NOT NULL PRIMARY KEY, balance BIGINT NOT NULL", uuidKeys(22), int64(7), 700, int64(1000)},
	}
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		for _, s := range shapes {
			t.Run(s.name, func(t *testing.T) {
				defer testdb.Watchdog(t, 60*time.Second)()
				db := testdb.Open(t, e.DSN(t))
				if _, ok := db.Dialect().(dialect.TransferCombiner); !ok || !db.Dialect().Features().Has(dialect.SharedCommits) {
					t.Skipf("%s has no combined transfer statement", db.Dialect().Server())
				}
				table := testdb.CreateTable(t, db, "rf_combined", s.ddl)
				k := s.keys
				for _, key := range k[:21] {
					testdb.Exec(t, db, "INSERT INTO "+table+" (id, balance) VALUES ('"+fmt.Sprint(key)+"', 100)")
				}
				move := func(from, to, amount any) <-chan error { return moveIn(db, table, from, to, amount) }
				release, firsts := engageLane(t, db, db, table, k, s.amount)
				want := map[any]int64{}
				for i := 0; i < 14; i += 2 {
					want[k[i]], want[k[i+1]] = -s.cents, s.cents
				}
				moves := []<-chan error{move(k[14], k[15], s.amount), move(k[19], k[20], s.amount)}
				want[k[14]], want[k[15]], want[k[19]], want[k[20]] = -s.cents, s.cents, -s.cents, s.cents
				declined := move(k[16], k[17], s.tooMuch)
				missing := move(k[18], k[21], s.amount)
				waitQueued(t, db, 4)
				release()
				for _, ch := range append(firsts, moves...) {
					if err := <-ch; err != nil {
						t.Fatalf("transfer: %v", err)
					}
				}
				if err := <-declined; !errors.Is(err, racefree.ErrBelowFloor) {
					t.Fatalf("transfer of %v out of 100: %v, want ErrBelowFloor", s.tooMuch, err)
				}
				var te *racefree.TransferError
				if err := <-missing; !errors.Is(err, racefree.ErrNoRow) || !errors.As(err, &te) || len(te.Missing) != 1 || fmt.Sprint(te.Missing[0]) != fmt.Sprint(k[21]) {
					t.Fatalf("transfer to a key with no row: %v, want ErrNoRow naming %v", err, k[21])
				}
				if combined, failed := racefree.TransfersCombined(db); combined != 1 || failed != 0 {
					t.Fatalf("%d combined statements, %d failed; want 1 and 0", combined, failed)
				}
				if shared, _, _ := racefree.TransferSharing(db); shared != 4 {
					t.Fatalf("%d transfers shared a commit, want the 4 queued", shared)
				}
				for _, key := range k[:21] {
					got := testdb.QueryInt(t, db, "SELECT CAST(balance * 100 AS BIGINT) FROM "+table+" WHERE id = '"+fmt.Sprint(key)+"'")
					if got != 10000+want[key] {
						t.Errorf("balance of %v is %d hundredths, want %d", key, got, 10000+want[key])
					}
				}
			})
		}
	})
}

// moveIn runs one transfer on db's table in a goroutine; its error
// arrives on the channel.
func moveIn(db *racefree.DB, table string, from, to, amount any) <-chan error {
	ch := make(chan error, 1)
	go func() {
		ch <- racefree.Transfer(context.Background(), db, table, "balance", from, to, amount, racefree.TransferOptions{})
	}()
	return ch
}

// engageLane holds the rows keys[0], keys[2], … keys[12] of table (in a
// transaction on base) and starts, on db, seven transfers of amount from
// each to the key after it, which wait for them: with the eighth transfer
// at work the lane limits its flights (combineFrom), so that transfers
// started next queue although their rows are free. release lets the
// seven go; their errors arrive on firsts.
func engageLane(t *testing.T, base, db *racefree.DB, table string, keys []any, amount any) (release func(), firsts []<-chan error) {
	t.Helper()
	var held []string
	for i := 0; i < 14; i += 2 {
		held = append(held, "'"+fmt.Sprint(keys[i])+"'")
	}
	release = holdWhere(t, base, table, "id IN ("+strings.Join(held, ", ")+")")
	for i := 0; i < 14; i += 2 {
		firsts = append(firsts, moveIn(db, table, keys[i], keys[i+1], amount))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, busy := racefree.TransfersQueued(db); busy == 2*len(firsts) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("transfer %d of the seven never started", len(firsts))
			}
		}
	}
	return release, firsts
}

// intKeys returns the keys 1 to n.
func intKeys(n int) []any {
	keys := make([]any, n)
	for i := range keys {
		keys[i] = int64(i + 1)
	}
	return keys
}

// uuidKeys returns n distinct UUIDs, as text, in no particular order.
func uuidKeys(n int) []any {
	keys := make([]any, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", (i*2654435761)%(1<<32), i)
	}
	return keys
}

// A combined statement whose answer is lost — the connection cut before
// the statement reached the server, or after it ran — leaves each of its
// transfers with ErrCommitUnknown, as a transfer alone's lost statement
// does; the rows show whether it ran.
func TestTransferShare_CombinedLostAnswer(t *testing.T) {
	sharingEngines(t, func(t *testing.T, base *racefree.DB) {
		if _, ok := base.Dialect().(dialect.TransferCombiner); !ok {
			t.Skipf("%s has no combined transfer statement", base.Dialect().Server())
		}
		for _, tc := range []struct {
			name string
			f    fault
			ran  bool
		}{
			{"lost before it ran", lostBefore, false},
			{"lost after it ran", lostAfter, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				fp := &faultPool{Pool: session.SQLPool{DB: base.SQL()}}
				db, err := racefree.NewSession(context.Background(), fp, base.Dialect())
				if err != nil {
					t.Fatal(err)
				}
				b := mustBalances(t, base, 20, 100)
				release, firsts := engageLane(t, base, db, b.Table, intKeys(20), int64(10))
				var queued []<-chan error
				for from := int64(15); from < 20; from += 2 {
					queued = append(queued, moveIn(db, b.Table, from, from+1, int64(10)))
				}
				waitQueued(t, db, len(queued))
				fp.mu.Lock()
				fp.plan = func(query string) fault {
					if strings.HasPrefix(query, "WITH racefree_types") {
						return tc.f
					}
					return noFault
				}
				fp.mu.Unlock()
				release()
				for _, ch := range firsts {
					if err := <-ch; err != nil {
						t.Fatalf("transfer before the combined statement: %v", err)
					}
				}
				for _, ch := range queued {
					if err := <-ch; !errors.Is(err, racefree.ErrCommitUnknown) {
						t.Fatalf("transfer of a combined statement whose answer was lost: %v, want ErrCommitUnknown", err)
					}
				}
				if fp.faults != 1 {
					t.Fatalf("%d faults injected, want 1 (statements %q)", fp.faults, fp.seen)
				}
				want := int64(100)
				if tc.ran {
					want = 90
				}
				for from := int64(15); from < 20; from += 2 {
					if got := testdb.QueryInt(t, base, "SELECT balance FROM "+b.Table+" WHERE id = "+strconv.FormatInt(from, 10)); got != want {
						t.Errorf("balance of %d is %d, want %d", from, got, want)
					}
				}
			})
		}
	})
}

// A combined statement the server refuses for the table's types (SQLSTATE
// class 42, as for an operator the column types lack) costs one try: its
// transfers run alone and succeed, and the lane combines no more — nor
// makes transfers on free rows wait.
func TestTransferShare_CombinedRefused(t *testing.T) {
	sharingEngines(t, func(t *testing.T, base *racefree.DB) {
		if _, ok := base.Dialect().(dialect.TransferCombiner); !ok {
			t.Skipf("%s has no combined transfer statement", base.Dialect().Server())
		}
		pool := &refusingPool{Pool: session.SQLPool{DB: base.SQL()}}
		db, err := racefree.NewSession(context.Background(), pool, base.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		b := mustBalances(t, base, 20, 100)
		for round := range 2 {
			release, firsts := engageLane(t, base, db, b.Table, intKeys(20), int64(10))
			var next []<-chan error
			for from := int64(15); from < 20; from += 2 {
				next = append(next, moveIn(db, b.Table, from, from+1, int64(10)))
			}
			if round == 0 {
				waitQueued(t, db, len(next))
				release()
			}
			// The second round's transfers no longer wait: they finish
			// while the seven still wait for their rows.
			for _, ch := range next {
				if err := <-ch; err != nil {
					t.Fatalf("round %d: transfer: %v", round, err)
				}
			}
			release()
			for _, ch := range firsts {
				if err := <-ch; err != nil {
					t.Fatalf("round %d: transfer: %v", round, err)
				}
			}
		}
		if n := pool.refused.Load(); n != 1 {
			t.Fatalf("%d combined statements sent, want 1: the lane should stop combining after the refusal", n)
		}
		if combined, failed := racefree.TransfersCombined(db); combined != 0 || failed != 1 {
			t.Fatalf("%d combined statements committed, %d failed; want 0 and 1", combined, failed)
		}
		for from := int64(15); from < 20; from += 2 {
			if got := testdb.QueryInt(t, base, "SELECT balance FROM "+b.Table+" WHERE id = "+strconv.FormatInt(from, 10)); got != 80 {
				t.Errorf("balance of %d is %d after two transfers of 10 out of 100, want 80", from, got)
			}
		}
	})
}

// refusingPool answers every combined transfer statement as PostgreSQL
// refuses a statement whose operator the column types lack.
type refusingPool struct {
	session.Pool
	refused atomic.Int64
}

func (p *refusingPool) Query(ctx context.Context, query string, args ...any) (session.Rows, error) {
	if strings.HasPrefix(query, "WITH racefree_types") {
		p.refused.Add(1)
		return nil, &pgconn.PgError{Severity: "ERROR", Code: "42883", Message: "operator does not exist (refusingPool)"}
	}
	return p.Pool.Query(ctx, query, args...)
}
