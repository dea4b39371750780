package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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

var _ = time.Second
