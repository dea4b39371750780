package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/testdb"
)

func TestRegister_Refuses(t *testing.T) {
	for _, c := range []*Case{
		{Name: "", Title: "x", Goroutines: 1, Setup: setupTags, Ops: hitOps},
		{Name: "x", Title: "x", Goroutines: 0, Setup: setupTags, Ops: hitOps},
		{Name: "x", Title: "x", Goroutines: 1, Ops: hitOps},
		{Name: "hit", Title: "again", Goroutines: 1, Setup: setupTags, Ops: hitOps},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) accepted a malformed or duplicate case", c.Name)
				}
			}()
			Register(c)
		}()
	}
}

func TestCases_Order(t *testing.T) {
	got := Names()
	if len(got) < len(caseOrder) {
		t.Fatalf("cases %v, want at least %v", got, caseOrder)
	}
	for i, n := range caseOrder {
		if got[i] != n {
			t.Fatalf("cases %v, want %v first", got, caseOrder)
		}
	}
	if _, ok := Lookup("storm"); !ok {
		t.Fatal("Lookup(storm) found nothing")
	}
	if _, ok := Lookup("nope"); ok {
		t.Fatal("Lookup(nope) found a case")
	}
}

// TestCases_Engines runs every registered case, briefly, on every engine:
// each measures (or says why the engine cannot run it) with no failed call
// on either side, and leaves no table behind.
func TestCases_Engines(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(PoolSize(8, 32))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // watchdog
		defer cancel()
		r := &Runner{DB: db, Batch: 20, Accounts: 10, Measure: MeasureConfig{
			Rounds: 2, Segment: 30 * time.Millisecond, Warmup: 10 * time.Millisecond, Confidence: 0.95, Seed: 1,
		}}
		rep := &Report{Schema: Schema, Engine: db.Dialect().Name(), Server: db.Dialect().Server()}
		for _, c := range Cases() {
			res, err := r.RunCase(ctx, c)
			if err != nil {
				t.Fatalf("case %s: %v", c.Name, err)
			}
			if res.Error != "" {
				t.Errorf("case %s failed: %s", c.Name, res.Error)
				continue
			}
			if res.Skipped != "" {
				t.Logf("case %s skipped: %s", c.Name, res.Skipped)
				continue
			}
			if res.RacefreeStats.Errors+res.RawStats.Errors > 0 {
				t.Errorf("case %s: failed calls: racefree %d (%s), raw %d (%s)", c.Name,
					res.RacefreeStats.Errors, res.RacefreeStats.ErrorSample, res.RawStats.Errors, res.RawStats.ErrorSample)
			}
			if res.RawSQL == "" {
				t.Errorf("case %s: no raw statements for the report", c.Name)
			}
			rep.Cases = append(rep.Cases, res)
		}
		if err := Validate(rep); err != nil {
			t.Error(err)
		}
		var n int
		q := map[string]string{
			"postgres": "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'rfbench%' AND table_schema = current_schema()",
			"mysql":    "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'rfbench%' AND table_schema = DATABASE()",
			"sqlite":   "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'rfbench%'",
		}[e.Name]
		if err := db.SQL().QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		// Other runs may share the server; only SQLite's file is ours.
		if e.Name == "sqlite" && n != 0 {
			t.Errorf("%d bench tables left behind", n)
		}
	})
}

// TestTransferCase_KeepsMoney checks that both sides of the transfer
// cases really transfer: money moves, and the total stays what it was.
func TestTransferCase_KeepsMoney(t *testing.T) {
	for _, name := range []string{"transfer", "transfer-primitive", "transfer-hot", "transfer-spread"} {
		t.Run(name, func(t *testing.T) { testTransferCaseKeepsMoney(t, name) })
	}
}

func testTransferCaseKeepsMoney(t *testing.T, name string) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		ctx := context.Background()
		c, _ := Lookup(name)
		r := &Runner{DB: db, Accounts: 5}
		env, drop, err := r.Prepare(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		defer drop()
		pair, err := c.Ops(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		w := NewWorkers(1, 7)[0]
		for i := range 40 {
			if err := pair.Op(Side(i%2))(ctx, w); err != nil {
				t.Fatalf("transfer %d (%s): %v", i, Side(i%2), err)
			}
		}
		q, _ := stmt(db.Dialect(), env.Table, "SELECT COALESCE(SUM(balance), 0), COALESCE(MIN(balance), 0), COUNT(*) FROM {t}")
		var sum, least, n int64
		if err := db.SQL().QueryRowContext(ctx, q).Scan(&sum, &least, &n); err != nil {
			t.Fatal(err)
		}
		accounts := int64(5)
		switch name { // whatever the runner says
		case "transfer-hot":
			accounts = hotAccounts
		case "transfer-spread":
			accounts = spreadAccounts
		}
		if n != accounts || sum != accounts*initialBalance {
			t.Fatalf("%d accounts holding %d, want %d holding %d", n, sum, accounts, accounts*initialBalance)
		}
		if least == initialBalance {
			t.Fatal("no money moved")
		}
	})
}

// TestMissCase_Creates checks that each side of the miss cases creates the
// row it is timed for, so that a miss is never silently a hit.
func TestMissCase_Creates(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		ctx := context.Background()
		for _, name := range []string{"miss", "miss-insert-first", "batch"} {
			c, _ := Lookup(name)
			r := &Runner{DB: db, Batch: 7}
			env, drop, err := r.Prepare(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			pair, err := c.Ops(ctx, env)
			if err != nil {
				drop()
				t.Fatal(err)
			}
			w := NewWorkers(1, 1)[0]
			for _, s := range []Side{Raw, Racefree, Raw, Racefree} {
				if err := pair.Op(s)(ctx, w); err != nil {
					t.Errorf("%s %s: %v", name, s, err)
				}
			}
			q, _ := stmt(db.Dialect(), env.Table, "SELECT COUNT(*) FROM {t}")
			var n int
			if err := db.SQL().QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			want := 1 + 4 // the hit row and one per call
			if name == "batch" {
				want = 1 + 4*7
			}
			if n != want {
				t.Errorf("%s: %d rows, want %d", name, n, want)
			}
			drop()
		}
	})
}

func TestRunCase_Unsupported(t *testing.T) {
	db := testdb.Open(t, "sqlite:"+t.TempDir()+"/u.db")
	c := &Case{Name: "fake-unsupported", Title: "x", Goroutines: 1,
		Setup: func(context.Context, Env) error { return nil },
		Ops: func(context.Context, Env) (Pair, error) {
			return Pair{}, errors.Join(errors.New("bench: no such statement"), ErrUnsupported)
		},
	}
	res, err := (&Runner{DB: db}).RunCase(context.Background(), c)
	if err != nil || res.Skipped == "" || res.Error != "" || res.Measured() {
		t.Fatalf("RunCase = %+v, %v; want the case skipped", res, err)
	}
}

// TestStormCase_SharesKeysWithinALaunch checks that processes started
// together (the same Env.Run) storm the same keys, and that a later
// launch starts on fresh ones.
func TestStormCase_SharesKeysWithinALaunch(t *testing.T) {
	db := testdb.Open(t, "sqlite:"+t.TempDir()+"/storm.db")
	ctx := context.Background()
	c, _ := Lookup("storm")
	env, drop, err := (&Runner{DB: db}).Prepare(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	rows := func() int {
		q, _ := stmt(db.Dialect(), env.Table, "SELECT COUNT(*) FROM {t}")
		var n int
		if err := db.SQL().QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	w := NewWorkers(1, 1)[0]
	call := func(env Env, s Side) {
		t.Helper()
		pair, err := c.Ops(ctx, env) // one "process"
		if err != nil {
			t.Fatal(err)
		}
		if err := pair.Op(s)(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []Side{Raw, Racefree} {
		before := rows()
		call(env, s)
		call(env, s) // another process of the same launch: the same hot key
		if got := rows() - before; got != 1 {
			t.Errorf("%s: two processes of one launch made %d rows, want 1", s, got)
		}
		next := env
		next.Run = "later"
		call(next, s)
		if got := rows() - before; got != 2 {
			t.Errorf("%s: a later launch made no fresh key (%d rows in all)", s, got)
		}
	}
}
