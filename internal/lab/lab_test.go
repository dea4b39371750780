package lab_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/testdb"
)

func TestHist_Quantile(t *testing.T) {
	var h lab.Hist
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty histogram p50 = %v, want 0", got)
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d < -0.02 || d > 0.02 {
			t.Errorf("Quantile(%v) = %v, want %v within 2%%", tc.q, got, tc.want)
		}
	}
	// Histograms travel between processes as JSON and merge.
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back lab.Hist
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Merge(h)
	if back.Count() != 2000 || back.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merged: n %d, p50 %v; want 2000, %v", back.Count(), back.Quantile(0.5), h.Quantile(0.5))
	}
	// An empty histogram travels too.
	var empty, got lab.Hist
	if b, err = json.Marshal(empty); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Count() != 0 {
		t.Errorf("empty histogram through JSON: %s, count %d, err %v", b, got.Count(), err)
	}
}

func TestHist_Clamp(t *testing.T) {
	var h lab.Hist
	h.Record(-time.Second)
	h.Record(0)
	h.Record(time.Hour)
	if h.Count() != 3 {
		t.Fatalf("count = %d, want 3: out-of-range latencies must be kept", h.Count())
	}
	if got := h.Quantile(0); got < time.Microsecond-time.Microsecond/100 || got > time.Microsecond+time.Microsecond/100 {
		t.Errorf("p0 = %v, want about 1µs (clamped)", got)
	}
	if got := h.Quantile(1); got < 10*time.Minute-time.Second || got > 10*time.Minute+time.Second {
		t.Errorf("p100 = %v, want about 10m (clamped)", got)
	}
}

func TestPart_Merge(t *testing.T) {
	a := lab.Part{Ops: 3, OK: 2, Errors: map[string]int64{"deadlock": 1}, Samples: map[string]string{"deadlock": "first"}, Elapsed: time.Second}
	b := lab.Part{Ops: 5, OK: 3, Errors: map[string]int64{"deadlock": 1, "busy": 1}, Samples: map[string]string{"deadlock": "second", "busy": "b"}, Elapsed: 2 * time.Second, Interrupted: true}
	a.Merge(b)
	if a.Ops != 8 || a.OK != 5 || a.ErrorCount() != 3 || a.Errors["deadlock"] != 2 || a.Samples["deadlock"] != "first" || a.Elapsed != 2*time.Second || !a.Interrupted {
		t.Errorf("merged part = %+v", a)
	}
}

func TestCheckSupported(t *testing.T) {
	for _, tc := range []struct {
		scenario, strategy, want string
	}{
		{"goc", "naive", ""},
		{"transfer", "catch", "does not apply"},
		{"counter", "createfirst", "does not apply"},
		{"nope", "naive", "unknown scenario"},
		{"goc", "nope", "unknown strategy"},
	} {
		err := lab.CheckSupported(nil, tc.scenario, tc.strategy)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckSupported(%s, %s) = %v, want %q", tc.scenario, tc.strategy, err, tc.want)
		}
	}
}

// The checkers, against tables built to break (and to keep) each
// invariant: a checker that cannot see a violation proves nothing.
func TestCheck(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		ctx := context.Background()
		engine := db.Dialect().Name()
		setup := func(t *testing.T, scenario, strategy string, keys int) *lab.Spec {
			spec := &lab.Spec{Scenario: scenario, Strategy: strategy, Keys: keys, Table: lab.TableName(scenario)}
			if err := lab.Setup(ctx, db.SQL(), engine, spec); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lab.Drop(context.Background(), db.SQL(), spec) })
			return spec
		}
		check := func(t *testing.T, spec *lab.Spec, ok int64) lab.Verdict {
			v, err := lab.Check(ctx, db.SQL(), spec, lab.Part{OK: ok})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}

		t.Run("GocDuplicates", func(t *testing.T) {
			spec := setup(t, "goc", "naive", 10)
			if v := check(t, spec, 0); !v.OK || *v.Duplicates != 0 {
				t.Errorf("empty table: %+v", v)
			}
			for _, name := range []string{"a", "a", "a", "b", "b", "c"} {
				testdb.Exec(t, db, "INSERT INTO "+spec.Table+" (name) VALUES ('"+name+"')")
			}
			if v := check(t, spec, 0); v.OK || *v.Duplicates != 3 || v.Rows != 6 {
				t.Errorf("a×3, b×2, c: duplicates %d, rows %d, ok %v; want 3, 6, false", *v.Duplicates, v.Rows, v.OK)
			}
		})
		t.Run("GocUniqueIndex", func(t *testing.T) {
			spec := setup(t, "goc", "racefree", 10)
			testdb.Exec(t, db, "INSERT INTO "+spec.Table+" (name) VALUES ('a')")
			_, err := db.SQL().ExecContext(ctx, "INSERT INTO "+spec.Table+" (name) VALUES ('a')")
			if err == nil {
				t.Error("racefree's goc table has no unique index on name")
			}
			if v := check(t, spec, 0); !v.OK {
				t.Errorf("one row: %+v", v)
			}
		})
		t.Run("M2MDuplicates", func(t *testing.T) {
			spec := setup(t, "m2m", "naive", 10)
			for _, pair := range []string{"1, 1", "1, 2", "2, 1", "1, 2"} {
				testdb.Exec(t, db, "INSERT INTO "+spec.Table+" (post_id, tag_id) VALUES ("+pair+")")
			}
			if v := check(t, spec, 0); v.OK || *v.Duplicates != 1 {
				t.Errorf("(1,2) twice: duplicates %d, ok %v; want 1, false", *v.Duplicates, v.OK)
			}
		})
		t.Run("TransferDrift", func(t *testing.T) {
			spec := setup(t, "transfer", "naive", 5)
			if v := check(t, spec, 0); !v.OK || *v.Drift != 0 || v.Rows != 5*lab.InitialBalance {
				t.Errorf("fresh accounts: %+v", v)
			}
			// A balanced transfer keeps the invariant.
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = balance - 70 WHERE id = 1")
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = balance + 70 WHERE id = 2")
			if v := check(t, spec, 0); !v.OK {
				t.Errorf("balanced transfer: %+v", v)
			}
			// A lost update: the credit is overwritten.
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = 1000 WHERE id = 2")
			if v := check(t, spec, 0); v.OK || *v.Drift != -70 || !strings.Contains(v.Words, "destroyed") {
				t.Errorf("credit lost: drift %d, ok %v, %q; want -70, false", *v.Drift, v.OK, v.Words)
			}
		})
		t.Run("TransferNegative", func(t *testing.T) {
			spec := setup(t, "transfer", "naive", 2)
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = -10 WHERE id = 1")
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = 2010 WHERE id = 2")
			if v := check(t, spec, 0); v.OK || *v.Drift != 0 || v.Negative != 1 {
				t.Errorf("sum right, one account below zero: drift %d, negative %d, ok %v", *v.Drift, v.Negative, v.OK)
			}
		})
		t.Run("CounterDrift", func(t *testing.T) {
			spec := setup(t, "counter", "naive", 3)
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET n = 4 WHERE id = 1")
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET n = 3 WHERE id = 3")
			if v := check(t, spec, 7); !v.OK || *v.Drift != 0 {
				t.Errorf("7 increments, 7 counted: %+v", v)
			}
			if v := check(t, spec, 9); v.OK || *v.Drift != -2 || !strings.Contains(v.Words, "2 increments lost") {
				t.Errorf("9 increments, 7 counted: drift %d, ok %v, %q", *v.Drift, v.OK, v.Words)
			}
			// Calls of unknown outcome may each have counted, or not.
			unknown := func(ok, lost, inFlight int64) lab.Part {
				return lab.Part{OK: ok, Errors: map[string]int64{"connection lost": lost, "deadlock": 5}, InFlight: inFlight}
			}
			if v, err := lab.Check(ctx, db.SQL(), spec, unknown(5, 1, 1)); err != nil || !v.OK || v.Ambiguous != 2 {
				t.Errorf("5 told, 7 counted, 2 unknown: %+v, %v", v, err)
			}
			if v, err := lab.Check(ctx, db.SQL(), spec, unknown(4, 1, 1)); err != nil || v.OK || !strings.Contains(v.Words, "1 increments too many") {
				t.Errorf("4 told, 7 counted, 2 unknown: %+v, %v", v, err)
			}
		})
		t.Run("TransferLedger", func(t *testing.T) {
			spec := setup(t, "transfer", "racefree", 3)
			l := lab.LedgerTable(spec)
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = balance - 10 WHERE id = 1")
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = balance + 10 WHERE id = 2")
			testdb.Exec(t, db, "INSERT INTO "+l+" (idem_key, from_id, to_id, amount) VALUES ('a', 1, 2, 10)")
			if v := check(t, spec, 0); !v.OK || v.Ledger == nil || v.Ledger.Transfers != 1 {
				t.Errorf("one transfer in the ledger and the balances: %+v", v)
			}
			// The same transfer applied a second time: the money still adds
			// up, the ledger shows it.
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = balance - 10 WHERE id = 1")
			testdb.Exec(t, db, "UPDATE "+spec.Table+" SET balance = balance + 10 WHERE id = 2")
			testdb.Exec(t, db, "INSERT INTO "+l+" (idem_key, from_id, to_id, amount) VALUES ('a', 1, 2, 10)")
			if v := check(t, spec, 0); v.OK || *v.Drift != 0 || v.Ledger.AppliedTwice != 1 || !strings.Contains(v.Words, "1 applied twice") {
				t.Errorf("a transfer applied twice: %+v %+v", v, v.Ledger)
			}
			// A transfer with no ledger row: the balances disagree with it.
			testdb.Exec(t, db, "DELETE FROM "+l)
			if v := check(t, spec, 0); v.OK || v.Ledger.Mismatched != 2 {
				t.Errorf("balances without their ledger rows: %+v %+v", v, v.Ledger)
			}
		})
	})
}

// Work in one process: racefree keeps every invariant, with several
// goroutines, and reports the calls it made.
func TestWork_InProcess(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		db := e.Open(t)
		ctx := context.Background()
		for _, scenario := range lab.Scenarios {
			spec := &lab.Spec{Scenario: scenario, Strategy: "racefree", Keys: 4, Table: lab.TableName(scenario), Rotate: 50 * time.Millisecond}
			if err := lab.Setup(ctx, db.SQL(), db.Dialect().Name(), spec); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lab.Drop(context.Background(), db.SQL(), spec) })
			p, err := lab.Work(ctx, db, *spec, 6, lab.At(time.Now()), 300*time.Millisecond, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			v, err := lab.Check(ctx, db.SQL(), spec, p)
			if err != nil {
				t.Fatal(err)
			}
			if p.Ops == 0 || p.ErrorCount() != 0 || !v.OK {
				t.Errorf("%s: %d calls, errors %v, %s", scenario, p.Ops, p.Samples, v.Words)
			}
		}
	})
}
