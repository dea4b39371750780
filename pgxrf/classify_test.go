package pgxrf_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/cutproxy"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/pgxrf"
)

// The errors pgx returns on its own path, provoked on the real server and
// classified by the DB: the conformance suite's cases (dialecttest), run
// through pgxpool and pgx.Tx instead of database/sql.

func TestClassify_Integrity(t *testing.T) {
	_, check, db, pool := open(t, 2)
	ctx := context.Background()
	parent := testdb.CreateTable(t, check, "pgxrf_parent", "id INTEGER PRIMARY KEY")
	child := testdb.CreateTable(t, check, "pgxrf_child", "id INTEGER PRIMARY KEY, email TEXT, req INTEGER NOT NULL, n INTEGER, p INTEGER, "+
		"CONSTRAINT {{table}}_email UNIQUE (email), CONSTRAINT {{table}}_n_pos CHECK (n > 0), "+
		"CONSTRAINT {{table}}_p_fk FOREIGN KEY (p) REFERENCES "+parent+" (id)")
	_, err := pool.Exec(ctx, "INSERT INTO "+child+" (id, email, req) VALUES (1, 'a@x', 1)")
	must(t, err)
	for _, tc := range []struct {
		name       string
		stmt       string
		class      dialect.Class
		sentinel   error
		constraint string
	}{
		{"unique", "INSERT INTO " + child + " (id, email, req) VALUES (2, 'a@x', 1)", dialect.ClassUniqueViolation, racefree.ErrUniqueViolation, child + "_email"},
		{"primary key", "INSERT INTO " + child + " (id, req) VALUES (1, 1)", dialect.ClassUniqueViolation, racefree.ErrUniqueViolation, child + "_pkey"},
		{"not null", "INSERT INTO " + child + " (id, req) VALUES (3, NULL)", dialect.ClassNotNullViolation, racefree.ErrNotNullViolation, ""},
		{"check", "INSERT INTO " + child + " (id, req, n) VALUES (4, 1, -1)", dialect.ClassCheckViolation, racefree.ErrCheckViolation, child + "_n_pos"},
		{"foreign key", "INSERT INTO " + child + " (id, req, p) VALUES (5, 1, 42)", dialect.ClassForeignKeyViolation, racefree.ErrForeignKeyViolation, child + "_p_fk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pool.Exec(ctx, tc.stmt)
			ce := db.Classify(err)
			if ce == nil || ce.Class != tc.class || !errors.Is(ce, tc.sentinel) || !errors.Is(ce, racefree.ErrIntegrity) {
				t.Fatalf("class %v, want %v (err %v)", ce, tc.class, err)
			}
			if ce.Constraint != tc.constraint {
				t.Errorf("Constraint = %q, want %q", ce.Constraint, tc.constraint)
			}
			if ce.Error() != err.Error() {
				t.Errorf("classified message %q differs from pgx's %q", ce.Error(), err.Error())
			}
			// The same error from inside pgxrf.RunInTx keeps its class and
			// is not retried.
			attempts := 0
			err = pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				_, err := tx.Exec(ctx, tc.stmt)
				return err
			})
			if !errors.Is(err, tc.sentinel) || attempts != 1 {
				t.Fatalf("through RunInTx: %v after %d attempts", err, attempts)
			}
		})
	}
}

// barrier lets n goroutines wait for each other once.
type barrier struct {
	wg      sync.WaitGroup
	release chan struct{}
}

func newBarrier(n int) *barrier {
	b := &barrier{release: make(chan struct{})}
	b.wg.Add(n)
	go func() { b.wg.Wait(); close(b.release) }()
	return b
}

func (b *barrier) wait(t *testing.T) {
	b.wg.Done()
	select {
	case <-b.release:
	case <-time.After(20 * time.Second):
		t.Error("barrier: the other transaction never arrived")
	}
}

// retryClasses records the classes RunInTx retried.
type retryClasses struct {
	mu      sync.Mutex // guards classes
	classes []dialect.Class
	db      *racefree.DB
}

func (r *retryClasses) onRetry(_ int, err error, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.classes = append(r.classes, r.db.Classify(err).Class)
}

func (r *retryClasses) count(c dialect.Class) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, got := range r.classes {
		if got == c {
			n++
		}
	}
	return n
}

func counterRows(t *testing.T, check *racefree.DB, ids ...int) string {
	t.Helper()
	table := testdb.CreateTable(t, check, "pgxrf_counter", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	for _, id := range ids {
		testdb.Exec(t, check, "INSERT INTO "+table+" (id, n) VALUES ("+strconv.Itoa(id)+", 0)")
	}
	return table
}

// A real deadlock between two pgxrf.RunInTx: each updates one row, both
// meet, then each updates the other's. The server kills one; RunInTx runs
// it again and both increments land.
func TestRunInTx_RetriesDeadlock(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, check, db, _ := open(t, 4)
	table := counterRows(t, check, 1, 2)
	log := &retryClasses{db: db}
	b := newBarrier(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, order := range [][2]int{{1, 2}, {2, 1}} {
		wg.Go(func() {
			first := true
			errs[i] = pgxrf.RunInTx(context.Background(), db, racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, log.onRetry)}, func(ctx context.Context, tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = %d", table, order[0])); err != nil {
					return err
				}
				if first {
					first = false
					b.wait(t)
				}
				_, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = %d", table, order[1]))
				return err
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	if log.count(dialect.ClassDeadlock) < 1 {
		t.Fatalf("no deadlock was retried (retried %v): the test forced none", log.classes)
	}
	if sum := testdb.QueryInt(t, check, "SELECT SUM(n) FROM "+table); sum != 4 {
		t.Fatalf("sum = %d, want 4", sum)
	}
}

// Write skew under SERIALIZABLE: each transaction reads the sum of both
// rows, both meet, each writes sum+1 into its own row. PostgreSQL aborts
// one with 40001; RunInTx retries it, and the result is serial (1 and 2).
func TestRunInTx_RetriesSerializationFailure(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, check, db, _ := open(t, 4)
	table := counterRows(t, check, 1, 2)
	log := &retryClasses{db: db}
	b := newBarrier(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []int{1, 2} {
		wg.Go(func() {
			first := true
			opts := racefree.TxOptions{Isolation: sql.LevelSerializable, Retry: onRetry(racefree.Backoff{}, log.onRetry)}
			errs[i] = pgxrf.RunInTx(context.Background(), db, opts, func(ctx context.Context, tx pgx.Tx) error {
				var sum int
				if err := tx.QueryRow(ctx, "SELECT SUM(n) FROM "+table).Scan(&sum); err != nil {
					return err
				}
				if first {
					first = false
					b.wait(t)
				}
				_, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s SET n = $1 WHERE id = %d", table, id), sum+1)
				return err
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	if log.count(dialect.ClassSerialization) < 1 {
		t.Fatalf("no serialization failure was retried (retried %v)", log.classes)
	}
	if got := testdb.QueryInt(t, check, "SELECT MAX(n) * 10 + MIN(n) FROM "+table); got != 21 {
		t.Fatalf("max*10+min = %d, want 21 (serial outcome 1 and 2)", got)
	}
}

func TestClassify_LockTimeout(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, check, db, pool := open(t, 4)
	ctx := context.Background()
	table := counterRows(t, check, 1)
	holder, err := pool.Begin(ctx)
	must(t, err)
	defer holder.Rollback(ctx)
	_, err = holder.Exec(ctx, "UPDATE "+table+" SET n = n + 1 WHERE id = 1")
	must(t, err)
	attempts := 0
	err = pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '100ms'"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE "+table+" SET n = n + 10 WHERE id = 1")
		return err
	})
	if !errors.Is(err, racefree.ErrLockNotAcquired) || attempts != 1 {
		t.Fatalf("blocked update: %v after %d attempts, want ErrLockNotAcquired at once", err, attempts)
	}
}

func TestClassify_Canceled(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, _, db, pool := open(t, 2)
	// The sleeps are long and the bound loose: on a loaded machine pgx's
	// cancel request, sent on a new connection, may take seconds; a query
	// that ran to its end would still be far past the bound.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := pool.Exec(ctx, "SELECT pg_sleep(30)")
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("canceled query returned after %v", d)
	}
	if !errors.Is(db.Classify(err), racefree.ErrCanceled) {
		t.Fatalf("canceled query: %v classified %v", err, db.Classify(err))
	}
	// Inside RunInTx: returned, not retried. The context ends once the
	// statement runs, not at a time set in advance, which BEGIN on a
	// loaded machine could outlast.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	attempts := 0
	err = pgxrf.RunInTx(ctx2, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		time.AfterFunc(100*time.Millisecond, cancel2)
		_, err := tx.Exec(ctx, "SELECT pg_sleep(30)")
		return err
	})
	if !errors.Is(err, racefree.ErrCanceled) || attempts != 1 {
		t.Fatalf("canceled transaction: %v after %d attempts", err, attempts)
	}
}

// A COMMIT never sent because ctx ended first: known not committed, not
// "outcome unknown".
func TestRunInTx_ContextEndsBeforeCommit(t *testing.T) {
	_, check, db, _ := open(t, 2)
	table := counterRows(t, check)
	ctx, cancel := context.WithCancel(context.Background())
	err := pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, n) VALUES (1, 1)"); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if !errors.Is(err, racefree.ErrCanceled) || errors.Is(err, racefree.ErrCommitUnknown) {
		t.Fatalf("err = %v, want ErrCanceled and not ErrCommitUnknown", err)
	}
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table); n != 0 {
		t.Fatalf("%d rows: the transaction committed", n)
	}
}

func TestClassify_ConnectionLost(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, check, db, _ := open(t, 2)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	must(t, err)
	defer conn.Close()
	var pid int64
	must(t, conn.Session().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	testdb.Exec(t, check, "SELECT pg_terminate_backend($1)", pid)
	time.Sleep(100 * time.Millisecond)
	_, err = conn.Session().Exec(ctx, "SELECT 1")
	if c := db.Classify(err); c == nil || (c.Class != dialect.ClassConnection && c.Class != dialect.ClassNotSent) {
		t.Fatalf("statement on a killed session: %v classified %v, want connection lost or not sent", err, c)
	}
}

// COMMIT cut in flight, before the server got it and after it answered:
// the function ran once, its effect is in the database at most once, and
// the caller gets ErrCommitUnknown — never a retry, whatever pgx says
// about the failed COMMIT.
func TestRunInTx_CommitCutIsUnknown(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	e := pg(t)
	check := e.Open(t)
	cfg, err := pgx.ParseConfig(e.DSN(t))
	must(t, err)
	p, err := cutproxy.Start(net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	must(t, err)
	defer p.Close()
	host, port, _ := net.SplitHostPort(p.Addr())
	via := mustPoolVia(t, e.DSN(t), host, port)
	db := mustDB(t, via)
	table := counterRows(t, check)
	ctx := context.Background()
	for k, kind := range []string{cutproxy.KindBeforeCommit, cutproxy.KindAfterCommit} {
		must(t, p.ArmCommitCut(kind))
		runs := 0
		err := pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
			runs++
			_, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s (id, n) VALUES (%d, %d)", table, k*100+runs, k))
			return err
		})
		n := testdb.QueryInt(t, check, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE n = %d", table, k))
		if runs != 1 || n > 1 || !errors.Is(err, racefree.ErrCommitUnknown) {
			t.Errorf("%s: ran %d times, %d rows, err %v; want once, at most one row, ErrCommitUnknown", kind, runs, n, err)
		}
		if p.Faults()[kind] != 1 {
			t.Errorf("%s: the cut did not happen (faults %v)", kind, p.Faults())
		}
		t.Logf("%s: %d row(s), %v", kind, n, err)
	}
}
