package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// onceTable is a key table of the test's own, dropped afterwards.
func onceTable(t *testing.T, db *racefree.DB) racefree.OnceOptions {
	t.Helper()
	name := testdb.UniqueName("once")
	if err := racefree.CreateOnceTable(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.SQL().Exec("DROP TABLE IF EXISTS " + name) })
	return racefree.OnceOptions{Table: name}
}

type receipt struct {
	ID    int64  `json:"id"`
	Token string `json:"token"`
}

func TestRunOnce_Basics(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		opts := onceTable(t, db)
		counter := testdb.CreateTable(t, db, "once_ctr", "id BIGINT PRIMARY KEY, n BIGINT NOT NULL")
		testdb.Exec(t, db, "INSERT INTO "+counter+" (id, n) VALUES (1, 0)")
		ctx := context.Background()
		runs := 0
		bump := func(r receipt, err error) func(ctx context.Context, tx *racefree.Tx) (receipt, error) {
			return func(ctx context.Context, tx *racefree.Tx) (receipt, error) {
				runs++
				if _, err := tx.ExecContext(ctx, "UPDATE "+counter+" SET n = n + 1 WHERE id = 1"); err != nil {
					return receipt{}, err
				}
				return r, err
			}
		}
		want := receipt{ID: 7, Token: "tok"}
		got, ran, err := racefree.RunOnce(ctx, db, "pay-1", opts, bump(want, nil))
		if err != nil || !ran || got != want {
			t.Fatalf("first call: %+v, ran %v, %v", got, ran, err)
		}
		got, ran, err = racefree.RunOnce(ctx, db, "pay-1", opts, bump(receipt{ID: 8}, nil))
		if err != nil || ran || got != want || runs != 1 {
			t.Fatalf("second call: %+v, ran %v, %v, fn ran %d times; want the first result, not run again", got, ran, err, runs)
		}
		t.Run("ErrorStoresNothing", func(t *testing.T) {
			boom := errors.New("boom")
			if _, _, err := racefree.RunOnce(ctx, db, "pay-2", opts, bump(receipt{}, boom)); !errors.Is(err, boom) {
				t.Fatalf("err = %v, want boom", err)
			}
			got, ran, err := racefree.RunOnce(ctx, db, "pay-2", opts, bump(receipt{ID: 2}, nil))
			if err != nil || !ran || got.ID != 2 {
				t.Fatalf("after a failed run: %+v, ran %v, %v; want a new run", got, ran, err)
			}
		})
		t.Run("ZeroResult", func(t *testing.T) {
			for i := range 2 {
				got, ran, err := racefree.RunOnce(ctx, db, "zero", opts, bump(receipt{}, nil))
				if err != nil || ran != (i == 0) || got != (receipt{}) {
					t.Fatalf("call %d: %+v, ran %v, %v", i, got, ran, err)
				}
			}
		})
		t.Run("KeysByteForByte", func(t *testing.T) {
			keys := []string{"Key", "key", "key ", strings.Repeat("k", 300), strings.Repeat("k", 301), "nul\x00", "bad\xff", "ünï"}
			for i, k := range keys {
				got, ran, err := racefree.RunOnce(ctx, db, k, opts, bump(receipt{ID: int64(i + 1)}, nil))
				if err != nil || !ran || got.ID != int64(i+1) {
					t.Fatalf("key %q: %+v, ran %v, %v: another key's result", k, got, ran, err)
				}
			}
			for i, k := range keys {
				got, ran, err := racefree.RunOnce(ctx, db, k, opts, bump(receipt{ID: -1}, nil))
				if err != nil || ran || got.ID != int64(i+1) {
					t.Fatalf("key %q again: %+v, ran %v, %v", k, got, ran, err)
				}
			}
		})
		t.Run("BadInput", func(t *testing.T) {
			for _, tc := range []struct {
				name string
				call func() error
			}{
				{"EmptyKey", func() error { _, _, err := racefree.RunOnce(ctx, db, "", opts, bump(receipt{}, nil)); return err }},
				{"NilFunc", func() error {
					_, _, err := racefree.RunOnce[receipt](ctx, db, "k", opts, nil)
					return err
				}},
				{"BadTable", func() error {
					_, _, err := racefree.RunOnce(ctx, db, "k", racefree.OnceOptions{Table: "a\x00b"}, bump(receipt{}, nil))
					return err
				}},
				{"Unencodable", func() error {
					_, _, err := racefree.RunOnce(ctx, db, "ch", opts, func(context.Context, *racefree.Tx) (chan int, error) { return make(chan int), nil })
					return err
				}},
			} {
				if err := tc.call(); !errors.Is(err, racefree.ErrInvalidInput) {
					t.Errorf("%s: err = %v, want ErrInvalidInput", tc.name, err)
				}
			}
			if _, _, err := racefree.RunOnce(ctx, nil, "k", opts, bump(receipt{}, nil)); err == nil {
				t.Error("nil DB: no error")
			}
		})
		// Every run committed but the one that failed with boom.
		if n := testdb.QueryInt(t, db, "SELECT n FROM "+counter+" WHERE id = 1"); n != int64(runs-1) {
			t.Fatalf("counter %d, fn committed %d times", n, runs-1)
		}
	})
}

// Keys expire: after TTL a key may be swept, by RunOnce itself as it
// writes keys (every 256) or by SweepOnce, so that the table stays about
// rate × TTL in size; a swept key runs fn again.
func TestRunOnce_Expiry(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		opts := onceTable(t, db)
		opts.TTL = time.Millisecond
		ctx := context.Background()
		fn := func(context.Context, *racefree.Tx) (int, error) { return 1, nil }
		const n = 300
		for i := range n {
			if _, _, err := racefree.RunOnce(ctx, db, "k"+strconv.Itoa(i), opts, fn); err != nil {
				t.Fatal(err)
			}
		}
		left := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+opts.Table)
		if left >= n {
			t.Errorf("%d keys of %d left: RunOnce never swept", left, n)
		}
		time.Sleep(5 * time.Millisecond)
		swept, err := racefree.SweepOnce(ctx, db, opts.Table)
		if err != nil || swept != left {
			t.Errorf("SweepOnce = %d, %v; want %d", swept, err, left)
		}
		if _, ran, err := racefree.RunOnce(ctx, db, "k1", opts, fn); err != nil || !ran {
			t.Errorf("a swept key: ran %v, %v; want it run again", ran, err)
		}
	})
}

// Many goroutines in several processes call RunOnce with the same keys at
// once: each key's fn commits exactly once, and every caller gets that
// run's result, whichever process made it.
func TestRunOnce_Concurrent(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 3*time.Minute)
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		opts := onceTable(t, db)
		counter := testdb.CreateTable(t, db, "once_ctr", "k BIGINT PRIMARY KEY, n BIGINT NOT NULL")
		const keys = 20
		for k := range keys {
			testdb.Exec(t, db, fmt.Sprintf("INSERT INTO %s (k, n) VALUES (%d, 0)", counter, k))
		}
		values := map[string]string{"dsn": dsn, "table": opts.Table, "counter": counter, "keys": strconv.Itoa(keys)}
		results := proctest.Run(t, 3, "TestRunOnceConcurrentChild", values, 150*time.Second)
		// Per key: who ran it, and what every caller got.
		ran := map[string]int{}
		got := map[string]map[string]bool{}
		for _, v := range proctest.Values(results, "call") {
			k, rest, _ := strings.Cut(v, ":")
			res, didRun, _ := strings.Cut(rest, ":")
			if got[k] == nil {
				got[k] = map[string]bool{}
			}
			got[k][res] = true
			if didRun == "true" {
				ran[k]++
			}
		}
		if len(got) != keys {
			t.Fatalf("results for %d keys, want %d", len(got), keys)
		}
		for k, results := range got {
			if len(results) != 1 || ran[k] != 1 {
				t.Errorf("key %s: %d runs reported, results %v; want one run and one result", k, ran[k], results)
			}
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+counter+" WHERE n <> 1"); n != 0 {
			t.Errorf("%d keys whose work committed other than once", n)
		}
		var crossed int
		for _, v := range proctest.Values(results, "replayed_from_other_process") {
			c, _ := strconv.Atoi(v)
			crossed += c
		}
		if crossed == 0 {
			t.Error("no caller got a result another process stored: the processes did not race")
		}
	})
}

func TestRunOnceConcurrentChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	db := testdb.Open(t, args.Values["dsn"])
	opts := racefree.OnceOptions{Table: args.Values["table"]}
	counter := args.Values["counter"]
	keys := args.Int("keys", 1)
	me := strconv.Itoa(args.Index)
	var mu sync.Mutex
	var crossed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			order := rand.Perm(keys)
			for _, k := range order {
				key := "key-" + strconv.Itoa(k)
				res, ran, err := racefree.RunOnce(context.Background(), db, key, opts, func(ctx context.Context, tx *racefree.Tx) (string, error) {
					_, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE k = %d", counter, k))
					return me + "/" + strconv.Itoa(g), err
				})
				if err != nil {
					t.Errorf("key %s: %v", key, err)
					return
				}
				if !ran && !strings.HasPrefix(res, me+"/") {
					crossed.Add(1)
				}
				mu.Lock()
				proctest.Report("call", key+":"+res+":"+strconv.FormatBool(ran))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	proctest.Report("replayed_from_other_process", crossed.Load())
}
