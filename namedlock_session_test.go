package racefree_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// forSessionLocks runs f on the engines that have session locks.
func forSessionLocks(t *testing.T, f func(t *testing.T, e testdb.Engine)) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite has no session locks (TestLockSession_SQLiteRefused)")
		}
		f(t, e)
	})
}

func TestLockSession_ExcludesAndReleases(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		ctx := context.Background()
		name := testdb.UniqueName("sess")
		l, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Check(ctx); err != nil {
			t.Fatalf("Held: %v", err)
		}
		start := time.Now()
		if _, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
			t.Fatalf("Try on a held lock: want ErrLockNotAcquired, got %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Try took %v", d)
		}
		start = time.Now()
		if _, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{Wait: racefree.Wait{Timeout: 300 * time.Millisecond}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
			t.Fatalf("Timeout on a held lock: want ErrLockNotAcquired, got %v", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
			t.Errorf("300ms timeout took %v", d)
		}
		// A transaction-scoped lock of the same name is a different lock
		// on MySQL; on PostgreSQL it is the same key.
		if e.Name == "postgres" {
			err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				return racefree.LockNamed(ctx, tx, name, racefree.LockOptions{Wait: racefree.Wait{Try: true}})
			})
			if !errors.Is(err, racefree.ErrLockNotAcquired) {
				t.Fatalf("LockNamed while the session lock is held: %v", err)
			}
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("second Unlock: %v", err)
		}
		if err := l.Check(ctx); !errors.Is(err, racefree.ErrLockLost) {
			t.Fatalf("Held after Unlock: %v", err)
		}
		l2, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{Wait: racefree.Wait{Try: true}})
		if err != nil {
			t.Fatalf("Try after Unlock: %v", err)
		}
		l2.Release(ctx)
	})
}

func TestLockSession_NamesOfAnyLength(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		ctx := context.Background()
		base := testdb.UniqueName("long") + strings.Repeat("x", 5000)
		a, err := racefree.AcquireSessionLock(ctx, db, base+"a", racefree.LockOptions{Wait: racefree.Wait{Try: true}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx)
		// Differs only after the 64th character: a different lock.
		b, err := racefree.AcquireSessionLock(ctx, db, base+"b", racefree.LockOptions{Wait: racefree.Wait{Try: true}})
		if err != nil {
			t.Fatalf("a different long name: %v", err)
		}
		defer b.Release(ctx)
		if _, err := racefree.AcquireSessionLock(ctx, db, base+"a", racefree.LockOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
			t.Fatalf("the same long name: %v", err)
		}
		for _, odd := range []string{"a\xffb", "'); SELECT 1; --", "😀"} {
			l, err := racefree.AcquireSessionLock(ctx, db, odd, racefree.LockOptions{Wait: racefree.Wait{Try: true}})
			if err != nil {
				t.Fatalf("name %q: %v", odd, err)
			}
			l.Release(ctx)
		}
		if _, err := racefree.AcquireSessionLock(ctx, db, "", racefree.LockOptions{}); err == nil {
			t.Fatal("empty name accepted")
		}
	})
}

func TestLockSession_SQLiteRefused(t *testing.T) {
	db := testdb.Open(t, "sqlite:"+t.TempDir()+"/s.db")
	_, err := racefree.AcquireSessionLock(context.Background(), db, "x", racefree.LockOptions{})
	if !errors.Is(err, racefree.ErrLockUnsupported) || !strings.Contains(err.Error(), "LockNamed") {
		t.Fatalf("want ErrLockUnsupported pointing to LockNamed, got %v", err)
	}
	if _, err := racefree.AcquireSessionLock(context.Background(), nil, "x", racefree.LockOptions{}); err == nil {
		t.Fatal("nil DB accepted")
	}
}

// TestLockSession_CanceledWaitDiscardsConnection: a wait ended by ctx
// leaves the lock state in doubt, so the connection must not go back to
// the pool.
func TestLockSession_CanceledWaitDiscardsConnection(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		holderDB, db := e.Open(t), e.Open(t)
		ctx := context.Background()
		name := testdb.UniqueName("cancel")
		h, err := racefree.AcquireSessionLock(ctx, holderDB, name, racefree.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release(ctx)
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if _, err := racefree.AcquireSessionLock(cctx, db, name, racefree.LockOptions{}); err == nil {
			t.Fatal("got a held lock")
		}
		if st := db.SQL().Stats(); st.OpenConnections != 0 || st.Idle != 0 {
			t.Fatalf("the in-doubt connection went back to the pool: %+v", st)
		}
	})
}

// TestLockSession_DeadConnection: when the session holding the lock is
// killed on the server, the lock is free for others and Held says it is
// lost.
func TestLockSession_DeadConnection(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db, admin := e.Open(t), e.Open(t)
		ctx := context.Background()
		name := testdb.UniqueName("dead")
		// One connection, so that the lock's session is the one whose id
		// is read here. (IS_USED_LOCK would name it on MySQL and MariaDB,
		// but TiDB answers 1 to any session but the holder's.)
		db.SQL().SetMaxOpenConns(1)
		var session int64
		sessionID := "SELECT pg_backend_pid()"
		if e.Name != "postgres" {
			sessionID = "SELECT CONNECTION_ID()"
		}
		if err := db.SQL().QueryRowContext(ctx, sessionID).Scan(&session); err != nil {
			t.Fatal(err)
		}
		l, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if e.Name == "postgres" {
			testdb.Exec(t, admin, "SELECT pg_terminate_backend($1)", session)
		} else {
			testdb.Exec(t, admin, "KILL "+strconv.FormatInt(session, 10))
		}
		l2, err := racefree.AcquireSessionLock(ctx, admin, name, racefree.LockOptions{Wait: racefree.Wait{Timeout: 10 * time.Second}})
		if err != nil {
			t.Fatalf("lock of a killed session not freed: %v", err)
		}
		defer l2.Release(ctx)
		if err := l.Check(ctx); !errors.Is(err, racefree.ErrLockLost) {
			t.Fatalf("Held on a killed session: want ErrLockLost, got %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Unlock after loss: %v", err)
		}
		if st := db.SQL().Stats(); st.OpenConnections != 0 {
			t.Fatalf("the dead connection stayed in the pool: %+v", st)
		}
	})
}

// TestLockSession_KilledProcessFreesLock kills (SIGKILL) a child process
// that holds a session lock: the server frees the lock.
func TestLockSession_KilledProcessFreesLock(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		ctx := context.Background()
		name := testdb.UniqueName("killed")
		args, _ := json.Marshal(map[string]string{"dsn": e.DSN(t), "lock": name})
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockSessionHolderChild$", "-test.v", "-test.count=1")
		// The environment proctest.Child reads.
		cmd.Env = append(os.Environ(), "RACEFREE_PROCTEST_CHILD=TestLockSessionHolderChild", "RACEFREE_PROCTEST_ARGS="+string(args),
			"RACEFREE_PROCTEST_INDEX=0", "RACEFREE_PROCTEST_START="+strconv.FormatInt(time.Now().UnixNano(), 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		locked := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "PROCTEST locked=") {
					locked <- true
				}
			}
			close(locked)
		}()
		select {
		case ok := <-locked:
			if !ok {
				t.Fatal("child exited without taking the lock")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("child did not take the lock")
		}
		if _, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
			t.Fatalf("the child's lock is not held: %v", err)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		start := time.Now()
		l, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{Wait: racefree.Wait{Timeout: 15 * time.Second}})
		if err != nil {
			t.Fatalf("lock not freed after its holder was killed: %v", err)
		}
		defer l.Release(ctx)
		t.Logf("%s: lock freed %v after SIGKILL of its holder", e.Name, time.Since(start).Round(time.Millisecond))
	})
}

// TestLockSessionHolderChild takes a session lock, says so, and sleeps
// until killed.
func TestLockSessionHolderChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of TestLockSession_KilledProcessFreesLock")
	}
	db := testdb.Open(t, args.Values["dsn"])
	if _, err := racefree.AcquireSessionLock(context.Background(), db, args.Values["lock"], racefree.LockOptions{}); err != nil {
		t.Fatal(err)
	}
	proctest.Report("locked", 1)
	time.Sleep(50 * time.Second) // the parent kills us long before
}

// TestLockSession_Counter: goroutines increment a counter in autocommit
// statements under a session lock: no increment lost.
func TestLockSession_Counter(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(24)
		table := mustNamedLockCounter(t, db)
		name := testdb.UniqueName("sesscounter")
		ctx := context.Background()
		ph := db.Dialect().Placeholder
		const workers, rounds = 16, 5
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					l, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{})
					if err != nil {
						t.Error(err)
						return
					}
					var n int
					err = db.SQL().QueryRowContext(ctx, "SELECT n FROM "+table+" WHERE id = 1").Scan(&n)
					if err == nil {
						_, err = db.SQL().ExecContext(ctx, "UPDATE "+table+" SET n = "+ph(1)+" WHERE id = 1", n+1)
					}
					if uerr := l.Release(ctx); uerr != nil || err != nil {
						t.Error(err, uerr)
						return
					}
				}
			}()
		}
		wg.Wait()
		if got := testdb.QueryInt(t, db, "SELECT n FROM "+table+" WHERE id = 1"); got != workers*rounds {
			t.Fatalf("counter = %d, want %d", got, workers*rounds)
		}
	})
}

// TestLockSession_DroppedLockReleased: a SessionLock dropped without
// Unlock is released once it is garbage collected, and its connection
// does not go back to the pool.
func TestLockSession_DroppedLockReleased(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db, other := e.Open(t), e.Open(t)
		ctx := context.Background()
		name := testdb.UniqueName("dropped")
		func() {
			if _, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{}); err != nil {
				t.Fatal(err)
			}
		}()
		deadline := time.Now().Add(20 * time.Second)
		for {
			runtime.GC()
			l, err := racefree.AcquireSessionLock(ctx, other, name, racefree.LockOptions{Wait: racefree.Wait{Try: true}})
			if err == nil {
				l.Release(ctx)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("dropped lock never released: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st := db.SQL().Stats(); st.Idle != 0 {
			t.Fatalf("the dropped lock's connection went back to the pool: %+v", st)
		}
	})
}
