package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// gocUser is a result struct for the get-or-create tests.
type gocUser struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
	Name  string `db:"name"`
}

const gocUsersDDL = `id {{id}}, email {{text}} NOT NULL, name {{text}} NOT NULL DEFAULT '', n INTEGER,
	CONSTRAINT {{table}}_email UNIQUE (email)`

func TestGetOrCreate_Basic(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_basic", gocUsersDDL)

		u, created, err := racefree.GetOrCreate[gocUser](ctx, db, table,
			racefree.Values{"email": "a@x"}, racefree.Values{"name": "Ann"}, racefree.Options{})
		if err != nil || !created || u.Email != "a@x" || u.Name != "Ann" || u.ID == 0 {
			t.Fatalf("first call: %+v created=%v err=%v", u, created, err)
		}
		u2, created, err := racefree.GetOrCreate[gocUser](ctx, db, table,
			racefree.Values{"email": "a@x"}, racefree.Values{"name": "Other"}, racefree.Options{})
		if err != nil || created || u2 != u {
			t.Fatalf("second call: %+v created=%v err=%v, want %+v", u2, created, err, u)
		}
		row, created, err := racefree.CreateOrGet[racefree.Values](ctx, db, table,
			racefree.Values{"email": "a@x"}, nil, racefree.Options{})
		if err != nil || created || fmt.Sprint(row["name"]) != "Ann" || fmt.Sprint(row["id"]) != fmt.Sprint(u.ID) {
			t.Fatalf("create-or-get hit: %v created=%v err=%v", row, created, err)
		}
		row, created, err = racefree.CreateOrGet[racefree.Values](ctx, db, table,
			racefree.Values{"email": "b@x"}, racefree.Values{"n": 7}, racefree.Options{})
		if err != nil || !created || fmt.Sprint(row["n"]) != "7" || row["email"] != "b@x" {
			t.Fatalf("create-or-get miss: %v created=%v err=%v", row, created, err)
		}
		if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); got != 2 {
			t.Fatalf("rows = %d, want 2", got)
		}
	})
}

func TestGetOrCreate_Strategies(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		plain := testdb.CreateTable(t, db, "goc_plain", `id {{id}}, email {{text}}, name {{text}}`)
		uniq := testdb.CreateTable(t, db, "goc_uniq", gocUsersDDL)
		for _, tc := range []struct {
			name     string
			table    string
			strategy racefree.Strategy
			wantErr  error
		}{
			{"ConstraintWithoutIndex", plain, racefree.StrategyConstraint, racefree.ErrNoCoveringIndex},
			{"LockWithoutIndex", plain, racefree.StrategyLock, nil},
			{"SerializableWithoutIndex", plain, racefree.StrategySerializable, nil},
			{"AutoWithoutIndex", plain, racefree.StrategyAuto, nil},
			{"Constraint", uniq, racefree.StrategyConstraint, nil},
			{"Lock", uniq, racefree.StrategyLock, nil},
			{"Serializable", uniq, racefree.StrategySerializable, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !strategyRuns(db, tc.strategy) {
					t.Skipf("%s has no SERIALIZABLE isolation", db.Dialect().Server())
				}
				email := tc.name + "@x"
				for i := range 2 {
					u, created, err := racefree.GetOrCreate[gocUser](ctx, db, tc.table,
						racefree.Values{"email": email}, racefree.Values{"name": "N"}, racefree.Options{Strategy: tc.strategy})
					if tc.wantErr != nil {
						if !errors.Is(err, tc.wantErr) {
							t.Fatalf("err = %v, want %v", err, tc.wantErr)
						}
						return
					}
					if err != nil || created != (i == 0) || u.Email != email {
						t.Fatalf("call %d: %+v created=%v err=%v", i, u, created, err)
					}
				}
				if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+tc.table+" WHERE email = "+db.Dialect().Placeholder(1), email); n != 1 {
					t.Fatalf("rows = %d, want 1", n)
				}
			})
		}
	})
}

// TestGetOrCreate_Executors: on a *Conn, and inside the caller's own
// *sql.Tx, which racefree never commits: a rollback leaves nothing.
func TestGetOrCreate_Executors(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_ex", gocUsersDDL)
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, strategy := range []racefree.Strategy{racefree.StrategyConstraint, racefree.StrategyLock} {
			email := "conn-" + strategy.String() + "@x"
			if _, created, err := racefree.GetOrCreate[gocUser](ctx, conn, table, racefree.Values{"email": email}, nil, racefree.Options{Strategy: strategy}); err != nil || !created {
				t.Fatalf("on a Conn (%v): created=%v err=%v", strategy, created, err)
			}
		}
		for _, strategy := range []racefree.Strategy{racefree.StrategyConstraint, racefree.StrategyLock} {
			txo := &sql.TxOptions{Isolation: sql.LevelReadCommitted}
			if e.Name == "sqlite" {
				txo = nil // SQLite has no READ COMMITTED
			}
			sqlTx, err := db.SQL().BeginTx(ctx, txo)
			if err != nil {
				t.Fatal(err)
			}
			tx := db.WrapTx(sqlTx, nil) // isolation unknown: racefree asks the server
			for i := range 2 {
				if _, created, err := racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": "tx@x"}, nil, racefree.Options{Strategy: strategy}); err != nil || created != (i == 0) {
					t.Fatalf("in a tx (%v), call %d: created=%v err=%v", strategy, i, created, err)
				}
			}
			if err := sqlTx.Rollback(); err != nil {
				t.Fatalf("rollback: %v (did racefree end the caller's transaction?)", err)
			}
			if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table+" WHERE email = 'tx@x'"); n != 0 {
				t.Fatalf("%d rows after the caller rolled back", n)
			}
		}
	})
}

// TestGetOrCreate_Adaptive: the observed hit ratio falls with misses, so
// that adaptive mode inserts first, and rises again with hits.
func TestGetOrCreate_Adaptive(t *testing.T) {
	ctx := context.Background()
	e, _ := testdb.Get("sqlite")
	db := e.Open(t)
	table := testdb.CreateTable(t, db, "goc_adapt", gocUsersDDL)
	opts := racefree.Options{Adaptive: true}
	if r := racefree.AdaptiveHitRatio(db, table, "email"); r != 1 {
		t.Fatalf("initial ratio %v, want 1 (select-first)", r)
	}
	for i := range 100 {
		if _, created, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": fmt.Sprint(i)}, nil, opts); err != nil || !created {
			t.Fatal(created, err)
		}
	}
	if r := racefree.AdaptiveHitRatio(db, table, "email"); r >= 0.4 {
		t.Fatalf("after 100 misses the ratio is %v, want < 0.4 (insert-first)", r)
	}
	for i := range 100 {
		if _, created, err := racefree.CreateOrGet[gocUser](ctx, db, table, racefree.Values{"email": fmt.Sprint(i)}, nil, opts); err != nil || created {
			t.Fatal(created, err)
		}
	}
	if r := racefree.AdaptiveHitRatio(db, table, "email"); r < 0.9 {
		t.Fatalf("after 100 hits the ratio is %v, want > 0.9 (select-first)", r)
	}
}
