package racefree_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

func TestLease_ExcludesExpiresFences(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		ctx := context.Background()
		name := testdb.UniqueName("lease")
		a, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{TTL: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
			t.Fatalf("Try on a held lease: %v", err)
		}
		start := time.Now()
		if _, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Timeout: 200 * time.Millisecond}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
			t.Fatalf("Timeout on a held lease: %v", err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
			t.Errorf("200ms timeout took %v", d)
		}
		if err := a.Renew(ctx); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		time.Sleep(700 * time.Millisecond) // past the TTL
		check := func(l *racefree.Lease) error {
			return racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
				return l.Check(ctx, tx)
			})
		}
		// Expired, but nobody else acquired it: the token still fences.
		if err := check(a); err != nil {
			t.Fatalf("Check of an expired lease nobody took: %v", err)
		}
		b, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{TTL: time.Minute, Wait: racefree.Wait{Try: true}})
		if err != nil {
			t.Fatalf("acquire an expired lease: %v", err)
		}
		if b.Token() <= a.Token() {
			t.Fatalf("token %d after %d: not increasing", b.Token(), a.Token())
		}
		if err := a.Renew(ctx); !errors.Is(err, racefree.ErrLeaseLost) {
			t.Fatalf("Renew of a superseded lease: %v", err)
		}
		if err := check(a); !errors.Is(err, racefree.ErrLeaseLost) {
			t.Fatalf("Check with the old token: want ErrLeaseLost, got %v", err)
		}
		if err := check(b); err != nil {
			t.Fatalf("Check with the current token: %v", err)
		}
		if err := b.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Release(ctx); err != nil {
			t.Fatalf("second Release: %v", err)
		}
		if err := b.Renew(ctx); !errors.Is(err, racefree.ErrLeaseLost) {
			t.Fatalf("Renew after Release: %v", err)
		}
		c, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Try: true}})
		if err != nil {
			t.Fatalf("acquire a released lease: %v", err)
		}
		if c.Token() <= b.Token() {
			t.Fatalf("token %d after %d", c.Token(), b.Token())
		}
		c.Release(ctx)
	})
}

// TestLease_CheckHoldsOffAcquirers: after Check, a new holder cannot
// acquire the (expired) lease until the guarded transaction ends.
func TestLease_CheckHoldsOffAcquirers(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		other := testdb.Open(t, dsn)
		ctx := context.Background()
		name := testdb.UniqueName("fence")
		a, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{TTL: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		acquired := make(chan time.Time, 1)
		var committed time.Time
		err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := a.Check(ctx, tx); err != nil {
				return err
			}
			go func() {
				b, err := racefree.AcquireLease(ctx, other, name, racefree.LeaseOptions{Wait: racefree.Wait{Timeout: 20 * time.Second}})
				if err != nil {
					t.Error(err)
					acquired <- time.Time{}
					return
				}
				acquired <- time.Now()
				b.Release(ctx)
			}()
			time.Sleep(400 * time.Millisecond) // the lease expires meanwhile
			committed = time.Now()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if at := <-acquired; at.Before(committed) {
			t.Fatalf("lease acquired %v before the fenced transaction committed", committed.Sub(at))
		}
	})
}

// TestLease_CounterAcrossProcesses: 2 processes × 8 goroutines increment a
// counter with a plain read-then-write under a lease checked in the
// transaction: no increment lost.
func TestLease_CounterAcrossProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 120*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		table := mustNamedLockCounter(t, db)
		proctest.Run(t, 2, "TestLeaseCounterChild", map[string]string{"dsn": dsn, "table": table, "lease": testdb.UniqueName("leasectr")}, 100*time.Second)
		if got := testdb.QueryInt(t, db, "SELECT n FROM "+table+" WHERE id = 1"); got != 2*8*3 {
			t.Fatalf("counter = %d, want %d", got, 2*8*3)
		}
	})
}

func TestLeaseCounterChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 90*time.Second)()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(8)
	ctx := context.Background()
	table := args.Values["table"]
	ph := db.Dialect().Placeholder
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				l, err := racefree.AcquireLease(ctx, db, args.Values["lease"], racefree.LeaseOptions{TTL: 10 * time.Second})
				if err != nil {
					t.Error(err)
					return
				}
				err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
					if err := l.Check(ctx, tx); err != nil {
						return err
					}
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT n FROM "+table+" WHERE id = 1").Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, "UPDATE "+table+" SET n = "+ph(1)+" WHERE id = 1", n+1)
					return err
				})
				if rerr := l.Release(ctx); err != nil || rerr != nil {
					t.Error(err, rerr)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestLease_KilledHolder: a SIGKILLed holder's lease is free after its TTL.
func TestLease_KilledHolder(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		ctx := context.Background()
		name := testdb.UniqueName("leasekill")
		args, _ := json.Marshal(map[string]string{"dsn": dsn, "lease": name})
		cmd := exec.Command(os.Args[0], "-test.run=^TestLeaseHolderChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "RACEFREE_PROCTEST_CHILD=TestLeaseHolderChild", "RACEFREE_PROCTEST_ARGS="+string(args),
			"RACEFREE_PROCTEST_INDEX=0", "RACEFREE_PROCTEST_START="+strconv.FormatInt(time.Now().UnixNano(), 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		sc := bufio.NewScanner(out)
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "PROCTEST acquired=") {
		}
		if _, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
			t.Fatalf("the child's lease is not held: %v", err)
		}
		cmd.Process.Kill()
		cmd.Wait()
		start := time.Now()
		l, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Timeout: 10 * time.Second}})
		if err != nil {
			t.Fatalf("lease of a killed holder not freed: %v", err)
		}
		defer l.Release(ctx)
		t.Logf("%s: lease free %v after SIGKILL (TTL 1s)", e.Name, time.Since(start).Round(time.Millisecond))
	})
}

func TestLeaseHolderChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of TestLease_KilledHolder")
	}
	db := testdb.Open(t, args.Values["dsn"])
	if _, err := racefree.AcquireLease(context.Background(), db, args.Values["lease"], racefree.LeaseOptions{TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	proctest.Report("acquired", 1)
	time.Sleep(50 * time.Second)
}

func TestLease_BadInput(t *testing.T) {
	db := testdb.Open(t, "sqlite:"+t.TempDir()+"/l.db")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts racefree.LeaseOptions
	}{
		{name: "", opts: racefree.LeaseOptions{}},
		{name: "x", opts: racefree.LeaseOptions{TTL: -1}},
		{name: "x", opts: racefree.LeaseOptions{TTL: time.Microsecond}},
	} {
		if _, err := racefree.AcquireLease(ctx, db, tc.name, tc.opts); err == nil {
			t.Errorf("AcquireLease(%q, %+v) accepted", tc.name, tc.opts)
		}
	}
	if _, err := racefree.AcquireLease(ctx, nil, "x", racefree.LeaseOptions{}); err == nil {
		t.Error("nil DB accepted")
	}
	l, err := racefree.AcquireLease(ctx, db, strings.Repeat("ü", 5000)+"'; --", racefree.LeaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.Release(ctx)
}
