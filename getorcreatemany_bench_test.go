package racefree_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkGetOrCreateManyFloor measures GetOrCreateMany of 1,000 new keys
// on SQLite against the engine's floor: the same work in hand-written SQL,
// with nothing racefree adds (no validation, no key matching, no result
// building), each pair timed back to back (see pair):
//
//	SelectInsert: the statements racefree runs, prepared, in statements
//	              of 256 bound values, in one transaction: a SELECT of the
//	              keys, then INSERT … ON CONFLICT DO NOTHING RETURNING.
//	Insert:       the INSERTs alone, as if nothing were read first.
//	Ceiling:      1,000 GetOrCreate calls against those INSERTs alone.
//
// x-raw = floor time / racefree time: how close racefree gets. Together
// with BenchmarkGetOrCreate/sqlite/Batch1000 (1,000 GetOrCreate calls vs
// one batch) it says how fast a batch can be on SQLite at all.
//
// Run: go test -run '^$' -bench BenchmarkGetOrCreateManyFloor -benchtime 20x -count 3 .
func BenchmarkGetOrCreateManyFloor(b *testing.B) {
	e, _ := testdb.Get("sqlite")
	db := testdb.Open(b, e.DSN(b))
	ctx := context.Background()
	table := testdb.CreateTable(b, db, "gocm_floor", gocUsersDDL)
	var seq atomic.Int64
	newKeys := func() []string {
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = "u" + strconv.FormatInt(seq.Add(1), 10) + "@x"
		}
		return keys
	}
	prepared := map[string]*sql.Stmt{}
	stmt := func(query string) *sql.Stmt {
		if s, ok := prepared[query]; ok {
			return s
		}
		s, err := db.SQL().PrepareContext(ctx, query)
		if err != nil {
			b.Fatal(err)
		}
		prepared[query] = s
		return s
	}
	// The statement shapes racefree uses on SQLite: powers of two.
	chunks := func(keys []string, most int) [][]string {
		var out [][]string
		for len(keys) > 0 {
			n := min(most, len(keys))
			for n&(n-1) != 0 {
				n &= n - 1
			}
			out = append(out, keys[:n])
			keys = keys[n:]
		}
		return out
	}
	run := func(tx *sql.Tx, query string, args []any) {
		rs, err := tx.StmtContext(ctx, stmt(query)).QueryContext(ctx, args...)
		if err != nil {
			b.Fatal(err)
		}
		for rs.Next() {
			var u gocUser
			var k string
			if err := rs.Scan(&k, &u.ID, &u.Email, &u.Name); err != nil {
				b.Fatal(err)
			}
		}
		if err := rs.Close(); err != nil {
			b.Fatal(err)
		}
	}
	raw := func(read bool) {
		keys := newKeys()
		tx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if read {
			for _, part := range chunks(keys, 256) {
				args := make([]any, len(part))
				for i, k := range part {
					args[i] = k
				}
				run(tx, "SELECT email, id, email, name FROM "+table+" WHERE email IN ("+strings.Repeat("?, ", len(part)-1)+"?)", args)
			}
		}
		for _, part := range chunks(keys, 128) {
			args := make([]any, 0, 2*len(part))
			for _, k := range part {
				args = append(args, k, "B")
			}
			run(tx, "INSERT INTO "+table+" (email, name) VALUES "+strings.Repeat("(?, ?), ", len(part)-1)+"(?, ?)"+
				" ON CONFLICT (email) DO NOTHING RETURNING email, id, email, name", args)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	ours := func() {
		keys := newKeys()
		items := make([]racefree.Item, len(keys))
		for i, k := range keys {
			items[i] = racefree.Item{Lookup: racefree.Values{"email": k}, Defaults: racefree.Values{"name": "B"}}
		}
		if _, err := racefree.GetOrCreateMany[gocUser](ctx, db, table, items, racefree.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("SelectInsert", func(b *testing.B) { pair(b, func() { raw(true) }, ours) })
	b.Run("Insert", func(b *testing.B) { pair(b, func() { raw(false) }, ours) })
	// The ceiling: 1,000 GetOrCreate calls against the INSERTs alone, the
	// least any batch must do. Its x-raw bounds the speed-up of
	// BenchmarkGetOrCreate/sqlite/Batch1000.
	b.Run("Ceiling", func(b *testing.B) {
		pair(b, func() {
			for _, k := range newKeys() {
				if _, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": k}, racefree.Values{"name": "B"}, racefree.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		}, func() { raw(false) })
	})
}
