package racefree_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestExplain_AgreesWithThePlanner: on a table of schemas, Explain (and so
// racefree doctor, which prints it) names the strategy that a real call
// plans, with and without a NULL lookup value.
func TestExplain_AgreesWithThePlanner(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		for _, tc := range []struct {
			name      string
			ddl       string
			lookup    []string
			index     bool // a covering index is named
			narrower  int
			wider     int
			strategy  racefree.Strategy
			nullStrat racefree.Strategy
		}{
			{"unique column", "id {{id}}, email {{text}} NOT NULL, CONSTRAINT {{table}}_e UNIQUE (email)", []string{"email"}, true, 0, 0, racefree.StrategyConstraint, racefree.StrategyLock},
			{"no index", "id {{id}}, email {{text}} NOT NULL", []string{"email"}, false, 0, 0, racefree.StrategyLock, racefree.StrategyLock},
			{"column and pair", "id {{id}}, a {{text}} NOT NULL, b {{text}} NOT NULL, CONSTRAINT {{table}}_a UNIQUE (a), CONSTRAINT {{table}}_ab UNIQUE (a, b)", []string{"b", "a"}, true, 1, 0, racefree.StrategyConstraint, racefree.StrategyLock},
			{"wider index only", "id {{id}}, a {{text}} NOT NULL, b {{text}} NOT NULL, CONSTRAINT {{table}}_ab UNIQUE (a, b)", []string{"a"}, false, 0, 1, racefree.StrategyLock, racefree.StrategyLock},
			{"nullable column", "id {{id}}, code {{text}}, CONSTRAINT {{table}}_c UNIQUE (code)", []string{"code"}, true, 0, 0, racefree.StrategyConstraint, racefree.StrategyLock},
			{"primary key", "k {{text}} NOT NULL PRIMARY KEY, v {{text}}", []string{"k"}, true, 0, 0, racefree.StrategyConstraint, racefree.StrategyLock},
		} {
			t.Run(tc.name, func(t *testing.T) {
				table := testdb.CreateTable(t, db, "explain", tc.ddl)
				ex, err := racefree.Explain(ctx, db, table, tc.lookup...)
				if err != nil {
					t.Fatal(err)
				}
				lookup := racefree.Values{}
				for _, c := range tc.lookup {
					lookup[c] = "x"
				}
				planned, err := racefree.PlannedStrategy(ctx, db, table, lookup)
				if err != nil {
					t.Fatal(err)
				}
				if ex.Strategy != planned || ex.Strategy != tc.strategy {
					t.Errorf("Explain says %v, a call plans %v, want %v", ex.Strategy, planned, tc.strategy)
				}
				if ex.Index != nil != tc.index || len(ex.Narrower) != tc.narrower || len(ex.Wider) != tc.wider {
					t.Errorf("index %v, narrower %v, wider %v", ex.Index, ex.Narrower, ex.Wider)
				}
				if ex.Reason == "" {
					t.Error("no reason given")
				}
				nullable := false
				for _, c := range tc.lookup {
					nullable = nullable || strings.Contains(strings.Join(ex.Nullable, ","), c)
				}
				if nullable {
					lookup[tc.lookup[0]] = nil
					planned, err := racefree.PlannedStrategy(ctx, db, table, lookup)
					if err != nil {
						t.Fatal(err)
					}
					if ex.StrategyWithNull != planned || planned != tc.nullStrat {
						t.Errorf("with a NULL: Explain says %v, a call plans %v, want %v", ex.StrategyWithNull, planned, tc.nullStrat)
					}
				}
			})
		}
		table := testdb.CreateTable(t, db, "explain_bad", "id {{id}}")
		if _, err := racefree.Explain(ctx, db, table, "nope", "nada"); !errors.Is(err, racefree.ErrInvalidInput) || !strings.Contains(err.Error(), `"nada", "nope"`) {
			t.Errorf("unknown columns: %v", err)
		}
	})
}
