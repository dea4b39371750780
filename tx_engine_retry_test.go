package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// The retry half of TestRunInTx_Engines: conflicts forced on the real
// engine, which RunInTx must retry, or must not.

// testRunInTxLockTimeout holds a write lock in one transaction and lets a
// second run into it with a short timeout. SQLite has no row locks; its
// equivalent is SQLITE_BUSY after the busy timeout.
func testRunInTxLockTimeout(t *testing.T, e testdb.Engine) {
	dsn := e.DSN(t)
	db := testdb.Open(t, dsn)
	tbl := testdb.CreateTable(t, db, "lockto", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES (1, 0)")
	ctx := context.Background()

	holder, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	want := dialect.ClassLockNotAcquired
	other := db
	var setup string
	switch db.Dialect().Name() {
	case "postgres":
		setup = "SET LOCAL lock_timeout = '100ms'"
	case "mysql":
		setup = "SET SESSION innodb_lock_wait_timeout = 1"
	case "sqlite":
		want = dialect.ClassBusy
		other = testdb.Open(t, dsn+"?_pragma=busy_timeout(50)")
	}
	start := time.Now()
	err = racefree.RunInTx(ctx, other, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
		if setup != "" {
			if _, err := tx.ExecContext(ctx, setup); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 10 WHERE id = 1")
		return err
	})
	if got := other.Classify(err); got == nil || got.Class != want {
		t.Fatalf("blocked update after %v: got %v (%v), want class %v", time.Since(start), got, err, want)
	}
	if want == dialect.ClassLockNotAcquired && !errors.Is(err, racefree.ErrLockNotAcquired) {
		t.Fatalf("errors.Is(err, ErrLockTimeout) = false for %v", err)
	}
}

// txBarrier lets n goroutines wait for each other once. A goroutine that
// waits longer than the timeout fails the test instead of hanging it.
type txBarrier struct {
	mu      sync.Mutex
	waiting int
	n       int
	release chan struct{}
}

func newTxBarrier(n int) *txBarrier { return &txBarrier{n: n, release: make(chan struct{})} }

func (b *txBarrier) wait(t *testing.T) {
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.n {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-time.After(20 * time.Second):
		t.Error("barrier: the other transaction never arrived")
	}
}

// txRetryLog records the classes of the errors RunInTx retried.
type txRetryLog struct {
	mu      sync.Mutex // guards classes
	classes []dialect.Class
	db      *racefree.DB
}

func (l *txRetryLog) onRetry(_ int, err error, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.classes = append(l.classes, l.db.Classify(err).Class)
}

func (l *txRetryLog) count(c dialect.Class) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, got := range l.classes {
		if got == c {
			n++
		}
	}
	return n
}

// testRetryDeadlock drives two transactions into a real deadlock: each
// updates one row, both wait at a barrier, then each updates the other's
// row. The server kills one; RunInTx must run it again, and both
// increments must land.
func testRetryDeadlock(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	if db.Dialect().Name() == "sqlite" {
		t.Skip("SQLite has a single writer: its transactions queue and cannot deadlock")
	}
	tbl := txCounterTable(t, db, 1, 2)
	log := &txRetryLog{db: db}
	b := newTxBarrier(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, order := range [][2]int{{1, 2}, {2, 1}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			errs[i] = racefree.RunInTx(context.Background(), db, racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, log.onRetry)}, func(ctx context.Context, tx *racefree.Tx) error {
				if _, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 1 WHERE id = "+txItoa(order[0])); err != nil {
					return err
				}
				if first {
					first = false
					b.wait(t)
				}
				_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 1 WHERE id = "+txItoa(order[1]))
				return err
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a deadlock reached the caller: %v", err)
		}
	}
	if got := log.count(dialect.ClassDeadlock); got < 1 {
		t.Fatalf("no deadlock was retried (retried classes %v): the test did not force one", log.classes)
	}
	if sum := testdb.QueryInt(t, db, "SELECT SUM(n) FROM "+tbl); sum != 4 {
		t.Fatalf("sum after both transactions = %d, want 4", sum)
	}
}

// testRetrySerialization drives two SERIALIZABLE transactions into write
// skew: each reads the sum of two rows, both wait, then each writes
// sum+1 into its own row. Serially the sums end 1 and 2; run together
// unprotected, both would write 1. PostgreSQL's SSI aborts one with a
// serialization failure; MySQL/MariaDB's SERIALIZABLE turns the reads into
// shared locks and the writes into a deadlock. Either way RunInTx retries
// and the result is serial.
func testRetrySerialization(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	if db.Dialect().Name() == "sqlite" {
		t.Skip("SQLite runs one write transaction at a time: no write skew to resolve")
	}
	if txIsTiDB(db.Dialect()) {
		t.Skip("TiDB has no SERIALIZABLE (it refuses it with 8048); RetryWriteConflict forces its serialization failures")
	}
	tbl := txCounterTable(t, db, 1, 2)
	log := &txRetryLog{db: db}
	b := newTxBarrier(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []int{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			opts := racefree.TxOptions{Isolation: sql.LevelSerializable, Retry: onRetry(racefree.Backoff{}, log.onRetry)}
			errs[i] = racefree.RunInTx(context.Background(), db, opts, func(ctx context.Context, tx *racefree.Tx) error {
				var sum int
				if err := tx.QueryRowContext(ctx, "SELECT SUM(n) FROM "+tbl).Scan(&sum); err != nil {
					return err
				}
				if first {
					first = false
					b.wait(t)
				}
				_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = "+txItoa(sum+1)+" WHERE id = "+txItoa(id))
				return err
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a conflict reached the caller: %v", err)
		}
	}
	want := dialect.ClassSerialization
	if db.Dialect().Name() == "mysql" {
		want = dialect.ClassDeadlock
	}
	if got := log.count(want); got < 1 {
		t.Fatalf("no %v was retried (retried classes %v): the test did not force one", want, log.classes)
	}
	if sum := testdb.QueryInt(t, db, "SELECT SUM(n) FROM "+tbl); sum != 3 {
		t.Fatalf("sum = %d, want 3 (a serial order); 2 means write skew got through", sum)
	}
}

// testRetryBusy proves two things on SQLite. A writer that cannot get the
// write lock within the busy timeout gets SQLITE_BUSY, which RunInTx
// retries. And because racefree begins write transactions IMMEDIATE, many
// goroutines doing read-then-write never see SQLITE_BUSY at all, where
// DEFERRED transactions do.
func testRetryBusy(t *testing.T, e testdb.Engine) {
	if e.Name != "sqlite" {
		t.Skip("SQLITE_BUSY is SQLite's")
	}
	dsn := e.DSN(t)
	db := testdb.Open(t, dsn)
	tbl := txCounterTable(t, db, 1)
	ctx := context.Background()

	t.Run("BusyIsRetried", func(t *testing.T) {
		impatient := testdb.Open(t, dsn+"?_pragma=busy_timeout(20)")
		log := &txRetryLog{db: impatient}
		holding, release := make(chan struct{}), make(chan struct{})
		go func() {
			_ = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				close(holding)
				<-release
				_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 1")
				return err
			})
		}()
		<-holding
		time.AfterFunc(300*time.Millisecond, func() { close(release) })
		err := racefree.RunInTx(ctx, impatient, racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, log.onRetry)}, func(ctx context.Context, tx *racefree.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 10")
			return err
		})
		if err != nil {
			t.Fatalf("busy writer: %v", err)
		}
		if log.count(dialect.ClassBusy) < 1 {
			t.Fatalf("no SQLITE_BUSY was retried (retried %v)", log.classes)
		}
		if n := testdb.QueryInt(t, db, "SELECT n FROM "+tbl); n != 11 {
			t.Fatalf("n = %d, want 11", n)
		}
	})

	readThenWrite := func(db *racefree.DB) (failures int64) {
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
						var n int
						if err := tx.QueryRowContext(ctx, "SELECT n FROM "+tbl).Scan(&n); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = ? WHERE id = 1", n+1)
						return err
					})
					if err != nil {
						if !errors.Is(err, racefree.ErrBusy) {
							t.Errorf("read-then-write: %v", err)
						}
						atomic.AddInt64(&failures, 1)
					}
				}
			}()
		}
		wg.Wait()
		return failures
	}
	t.Run("ImmediateNeverBusy", func(t *testing.T) {
		before := testdb.QueryInt(t, db, "SELECT n FROM "+tbl)
		if f := readThenWrite(db); f != 0 {
			t.Fatalf("%d read-then-write transactions failed with SQLITE_BUSY despite IMMEDIATE", f)
		}
		if n := testdb.QueryInt(t, db, "SELECT n FROM "+tbl); n != before+16*25 {
			t.Fatalf("n = %d, want %d: an increment was lost", n, before+16*25)
		}
	})
	t.Run("DeferredFailsBusy", func(t *testing.T) {
		deferred := testdb.Open(t, dsn+"?_txlock=deferred")
		var f int64
		for round := 0; round < 10 && f == 0; round++ {
			f = readThenWrite(deferred)
		}
		if f == 0 {
			t.Fatal("DEFERRED read-then-write never hit SQLITE_BUSY: the control shows nothing")
		}
		t.Logf("DEFERRED: %d of 400 transactions failed with SQLITE_BUSY", f)
	})
}

// testCommitUnknown kills the session while the transaction is open, so
// that COMMIT gets no answer. RunInTx must report the outcome as unknown
// and must not run the body again.
func testCommitUnknown(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	if db.Dialect().Name() == "sqlite" {
		t.Skip("SQLite commits locally: its outcome is always known")
	}
	tbl := txCounterTable(t, db)
	calls := 0
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		calls++
		if err := txInsert(ctx, tx, tbl, calls); err != nil {
			return err
		}
		txKillSession(t, db, txSessionID(t, db, tx))
		return nil
	})
	var unknown *racefree.CommitUnknownError
	if !errors.As(err, &unknown) || !errors.Is(err, racefree.ErrCommitUnknown) {
		t.Fatalf("RunInTx = %v, want *CommitUnknownError", err)
	}
	if calls != 1 {
		t.Fatalf("body ran %d times: an unknown commit outcome was retried", calls)
	}
	t.Logf("commit on a killed session: %v", err)
}

// testRetryWriteConflict forces TiDB's optimistic write conflict: two
// transactions in optimistic mode read a counter, wait for each other,
// and both write read+1. Neither waits for a lock; the second COMMIT fails
// with 9007, which must be classified as a serialization failure and
// retried, so the counter ends at 2.
func testRetryWriteConflict(t *testing.T, e testdb.Engine) {
	probe := e.Open(t)
	if !txIsTiDB(probe.Dialect()) {
		t.Skip("optimistic write conflicts at COMMIT are TiDB's")
	}
	dsn := e.DSN(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	// The driver runs SET tidb_txn_mode = 'optimistic' on each connection.
	db := testdb.Open(t, dsn+sep+"tidb_txn_mode=%27optimistic%27")
	if d := db.Dialect(); !d.Features().Has(dialect.ClientRetries) || !strings.Contains(d.Server(), "optimistic") {
		t.Fatalf("%s: optimistic mode not detected (features %b)", d.Server(), d.Features())
	}
	tbl := txCounterTable(t, db, 1)
	log := &txRetryLog{db: db}
	b := newTxBarrier(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			errs[i] = racefree.RunInTx(context.Background(), db, racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, log.onRetry)}, func(ctx context.Context, tx *racefree.Tx) error {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = "+txItoa(n+1)+" WHERE id = 1"); err != nil {
					return err
				}
				if first {
					first = false
					b.wait(t) // both have written; neither has committed
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a write conflict reached the caller: %v", err)
		}
	}
	if got := log.count(dialect.ClassSerialization); got < 1 {
		t.Fatalf("no write conflict was retried (retried classes %v): the test did not force one", log.classes)
	}
	if n := testdb.QueryInt(t, db, "SELECT n FROM "+tbl+" WHERE id = 1"); n != 2 {
		t.Fatalf("counter = %d, want 2: an optimistic write was lost", n)
	}
}
