package dialecttest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// The optional interfaces of package dialect (capabilities.go there): each
// check skips when the dialect does not implement its interface.

const (
	levelReadCommitted  = sql.LevelReadCommitted
	levelRepeatableRead = sql.LevelRepeatableRead
	levelSerializable   = sql.LevelSerializable
)

// levels are the isolation levels a transaction may ask for, weakest
// first, that the checks try: those the dialect can begin.
func (h *h) levels() []sql.IsolationLevel {
	l := []sql.IsolationLevel{sql.LevelDefault, levelReadCommitted, levelRepeatableRead}
	if h.d.Features().Has(dialect.SerializableIsolation) {
		l = append(l, levelSerializable)
	}
	return l
}

// strength orders isolation levels; LevelDefault is 0.
func strength(l sql.IsolationLevel) int {
	switch l {
	case sql.LevelReadUncommitted:
		return 1
	case sql.LevelReadCommitted:
		return 2
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		return 3
	case sql.LevelSerializable, sql.LevelLinearizable:
		return 4
	}
	return 0
}

func testSchemaReader(h *h) {
	sr, ok := h.d.(dialect.SchemaReader)
	if !ok {
		h.t.Skip("no dialect.SchemaReader")
	}
	name, _ := h.table("cat", "id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL, nick VARCHAR(100), n INTEGER DEFAULT 7, "+
		"a INTEGER, b INTEGER, CONSTRAINT {t}_email UNIQUE (email), CONSTRAINT {t}_ab UNIQUE (a, b)")
	tbl, err := sr.ReadTable(h.ctx, h.pool, name)
	if err != nil {
		h.t.Fatalf("ReadTable(%q): %v", name, err)
	}
	var cols []string
	for _, c := range tbl.Columns {
		cols = append(cols, c.Name)
	}
	if want := []string{"id", "email", "nick", "n", "a", "b"}; strings.Join(cols, ",") != strings.Join(want, ",") {
		h.t.Fatalf("columns %q, want %q in table order", cols, want)
	}
	// A nullable column without a default may be reported either way
	// (MariaDB's catalog gives it DEFAULT NULL): an INSERT may leave it
	// out regardless.
	for _, tc := range []struct {
		col                  string
		nullable, hasDefault bool
	}{
		{"email", false, false},
		{"nick", true, true},
		{"n", true, true},
	} {
		c, _ := tbl.Column(tc.col)
		if c.Nullable != tc.nullable || (!c.HasDefault && tc.hasDefault && !c.Nullable) || (c.HasDefault && !tc.hasDefault) {
			h.t.Errorf("column %s: Nullable %v, HasDefault %v; want %v, %v", tc.col, c.Nullable, c.HasDefault, tc.nullable, tc.hasDefault)
		}
		if c.Type == "" {
			h.t.Errorf("column %s: no type", tc.col)
		}
	}
	find := func(cols ...string) *dialect.UniqueIndex {
		for i, ix := range tbl.Unique {
			if strings.Join(ix.Columns, ",") == strings.Join(cols, ",") {
				return &tbl.Unique[i]
			}
		}
		h.t.Errorf("no unique index on (%s) in %+v", strings.Join(cols, ", "), tbl.Unique)
		return &dialect.UniqueIndex{}
	}
	if ix := find("id"); !ix.Primary {
		h.t.Errorf("the index on (id) is not marked Primary: %+v", ix)
	}
	for _, ix := range []*dialect.UniqueIndex{find("email"), find("a", "b")} {
		if ix.Primary || ix.NullsNotDistinct || ix.Name == "" {
			h.t.Errorf("unique index %+v: want a name, not primary, NULLs distinct", *ix)
		}
	}
	if len(tbl.Unique) != 3 {
		h.t.Errorf("unique indexes %+v, want 3", tbl.Unique)
	}
	if _, err := sr.ReadTable(h.ctx, h.pool, uniqueName("missing")); !errors.Is(err, dialect.ErrNoTable) {
		h.t.Errorf("ReadTable of a missing table: %v, want ErrNoTable", err)
	}
}

// snapshotted creates a table for a key and a second table, begins a
// transaction at level on the pool and reads the second table, so that a
// snapshot taken at the transaction's first read exists (InnoDB takes it
// at the first consistent read, PostgreSQL at the first statement) without
// the transaction holding any lock on the first table. ok is false when
// the server refuses the level.
func snapshotted(h *h, level sql.IsolationLevel) (qt string, tx session.Tx, ok bool) {
	h.t.Helper()
	_, qt = h.table("fr", "id INTEGER PRIMARY KEY, k VARCHAR(40) NOT NULL")
	_, other := h.table("frs", "id INTEGER PRIMARY KEY")
	tx, err := h.pool.Begin(h.ctx, session.TxOptions{Isolation: level})
	if err != nil {
		h.t.Logf("begin at %v: %v", level, err)
		return "", nil, false
	}
	h.t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	h.count(tx, other, "")
	return qt, tx, true
}

// commitWinner inserts the row of key k from another session, while the
// transaction that snapshotted waits: the winner of an insert race.
func commitWinner(h *h, qt, k string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
	defer cancel()
	if _, err := h.pool.Exec(ctx, "INSERT INTO "+qt+" (id, k) VALUES (1, "+h.d.Placeholder(1)+")", k); err != nil {
		h.t.Fatalf("insert from another session while a transaction is open: %v", err)
	}
}

// sees reports whether SELECT … WHERE k = ? with clause finds the row in tx.
func sees(h *h, tx session.Tx, qt, clause, k string) bool {
	h.t.Helper()
	return len(h.ints(tx, "SELECT id FROM "+qt+" WHERE k = "+h.d.Placeholder(1)+clause, k)) > 0
}

// testFreshReader checks FreshRead's promise at every level the server
// begins: after another session committed a row the transaction's
// snapshot predates, a SELECT with the clause FreshRead returns reads it,
// both when the level is known and when it is not; when FreshRead says no
// statement can (ok false), the check logs whether a plain SELECT did.
func testFreshReader(h *h) {
	fr, ok := h.d.(dialect.FreshReader)
	if !ok {
		h.t.Skip("no dialect.FreshReader")
	}
	if h.d.Features().Has(dialect.SingleWriter) {
		h.t.Skipf("%s has a single writer: no other session can commit a row while a write transaction is open", h.d.Server())
	}
	for _, level := range h.levels() {
		for _, known := range []bool{true, false} {
			h.t.Run(fmt.Sprintf("%v/known=%v", level, known), func(t *testing.T) {
				h := *h
				h.t = t
				qt, tx, ok := snapshotted(&h, level)
				if !ok {
					t.Skipf("the server refuses %v", level)
				}
				commitWinner(&h, qt, "winner")
				clause, fresh := fr.FreshRead(level, known)
				switch {
				case fresh && !sees(&h, tx, qt, clause, "winner"):
					t.Errorf("FreshRead(%v, %v) = %q, true, but that SELECT does not see the row committed after the snapshot", level, known, clause)
				case !fresh && sees(&h, tx, qt, "", "winner"):
					t.Logf("FreshRead(%v, %v) says no statement sees the row, but a plain SELECT did: cautious, a restart costs more", level, known)
				}
			})
		}
	}
}

// readsLater reports whether a plain SELECT in tx sees a row committed
// by another session after tx's snapshot: true at READ COMMITTED, false
// at REPEATABLE READ.
func readsLater(h *h, tx session.Tx, qt string) bool {
	commitWinner(h, qt, "later")
	return sees(h, tx, qt, "", "later")
}

// checkIsolation checks a level CurrentIsolation reported for tx against
// what the transaction does: a READ COMMITTED one sees a row committed
// after its snapshot, a REPEATABLE READ one does not.
func checkIsolation(h *h, got sql.IsolationLevel, qt string, tx session.Tx) {
	h.t.Helper()
	if h.d.Features().Has(dialect.SingleWriter) {
		return // no other session can commit meanwhile
	}
	switch strength(got) {
	case 1, 2:
		if !readsLater(h, tx, qt) {
			h.t.Errorf("CurrentIsolation says %v, but the transaction does not see a row committed after its snapshot", got)
		}
	case 3:
		if readsLater(h, tx, qt) {
			h.t.Errorf("CurrentIsolation says %v, but the transaction sees a row committed after its snapshot", got)
		}
	}
}

// testIsolationDefault asks for the level of a transaction begun at the
// server's default, and of the pool's session, and checks the answer
// against what the transaction does.
func testIsolationDefault(h *h) {
	ir, ok := h.d.(dialect.IsolationReader)
	if !ok {
		h.t.Skip("no dialect.IsolationReader")
	}
	if _, err := ir.CurrentIsolation(h.ctx, h.pool); err != nil {
		h.t.Fatalf("CurrentIsolation on the pool: %v", err)
	}
	qt, tx, ok := snapshotted(h, sql.LevelDefault)
	if !ok {
		h.t.Fatal("the server refuses a transaction at its default level")
	}
	got, err := ir.CurrentIsolation(h.ctx, tx)
	if err != nil {
		h.t.Fatalf("CurrentIsolation: %v", err)
	}
	h.t.Logf("%s: default level %v", h.d.Server(), got)
	checkIsolation(h, got, qt, tx)
}

// testIsolationExplicit begins a transaction at each level and checks
// that CurrentIsolation answers that level, a stronger one the server
// really runs (SQLite runs every transaction SERIALIZABLE), or
// sql.LevelDefault when it cannot tell; never a weaker one, nor one the
// transaction's behaviour belies.
func testIsolationExplicit(h *h) {
	ir, ok := h.d.(dialect.IsolationReader)
	if !ok {
		h.t.Skip("no dialect.IsolationReader")
	}
	for _, level := range h.levels()[1:] {
		h.t.Run(level.String(), func(t *testing.T) {
			h := *h
			h.t = t
			qt, tx, ok := snapshotted(&h, level)
			if !ok {
				t.Skipf("the server refuses %v", level)
			}
			got, err := ir.CurrentIsolation(h.ctx, tx)
			switch {
			case err != nil:
				t.Fatalf("CurrentIsolation: %v", err)
			case got == sql.LevelDefault:
				return
			case strength(got) < strength(level):
				t.Fatalf("CurrentIsolation in a transaction begun at %v says %v", level, got)
			}
			checkIsolation(&h, got, qt, tx)
		})
	}
}

// truthy reads a boolean as engines return it: a bool, an integer, or
// text.
func truthy(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case []byte:
		return truthy(string(x))
	case string:
		switch strings.ToLower(x) {
		case "t", "true", "1":
			return true, nil
		case "f", "false", "0":
			return false, nil
		}
	}
	return false, fmt.Errorf("not a boolean: %T %v", v, v)
}

// testUpsertFlagger checks that the expression UpsertInserted returns is
// true exactly when the upsert inserted: in turn, and under contention,
// where many sessions upsert the same keys at once and each key must be
// reported inserted exactly once.
func testUpsertFlagger(h *h) {
	uf, ok := h.d.(dialect.UpsertFlagger)
	if !ok {
		h.t.Skip("no dialect.UpsertFlagger")
	}
	if f := h.d.Features(); !f.Has(dialect.OnConflict) || !f.Has(dialect.Returning) {
		h.t.Skipf("%s lacks ON CONFLICT or RETURNING, which the upsert flag is for", h.d.Server())
	}
	qid, err := h.d.QuoteIdent("id")
	if err != nil {
		h.t.Fatal(err)
	}
	expr, ok := uf.UpsertInserted(qid)
	if !ok {
		h.t.Skipf("%s: UpsertInserted has no expression (the engine cannot tell)", h.d.Server())
	}
	_, qt := h.table("ups", "id INTEGER PRIMARY KEY, k VARCHAR(40) NOT NULL, v INTEGER NOT NULL, CONSTRAINT {t}_k UNIQUE (k)")
	stmt := "INSERT INTO " + qt + " (id, k, v) VALUES (" + h.ph(1, 3) + ") ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING " + expr
	var nextID atomic.Int64
	upsert := func(ctx context.Context, k string, v int64) (bool, error) {
		var got any
		if err := h.pool.QueryRow(ctx, stmt, nextID.Add(1), k, v).Scan(&got); err != nil {
			return false, err
		}
		return truthy(got)
	}
	for i, want := range []bool{true, false, false} {
		if got, err := upsert(h.ctx, "solo", int64(i)); err != nil || got != want {
			h.t.Fatalf("upsert %d of one key: inserted %v, %v; want %v (RETURNING %s)", i+1, got, err, want, expr)
		}
	}

	const workers, keys = 8, 25
	var inserted [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
			defer cancel()
			for _, k := range rand.Perm(keys) {
				got, err := upsert(ctx, fmt.Sprintf("k%d", k), int64(w))
				if err != nil {
					h.t.Errorf("concurrent upsert: %v", err)
					return
				}
				if got {
					inserted[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range inserted {
		if n := inserted[k].Load(); n != 1 {
			h.t.Errorf("key k%d reported inserted %d times by %d concurrent upserts, want exactly once", k, n, workers)
		}
	}
}

// testBatchSizer sends one INSERT with as many bound parameters as
// BatchParams allows, which the server must take.
func testBatchSizer(h *h) {
	bs, ok := h.d.(dialect.BatchSizer)
	if !ok {
		h.t.Skip("no dialect.BatchSizer")
	}
	n := bs.BatchParams()
	if n < 2 || n > 1<<20 {
		h.t.Fatalf("BatchParams() = %d, want between 2 and 2^20", n)
	}
	_, qt := h.table("batch", "id INTEGER PRIMARY KEY, v INTEGER NOT NULL")
	rows := n / 2
	var b strings.Builder
	args := make([]any, 0, 2*rows)
	b.WriteString("INSERT INTO " + qt + " (id, v) VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + h.ph(2*i+1, 2) + ")")
		args = append(args, int64(i+1), int64(i))
	}
	if _, err := h.pool.Exec(h.ctx, b.String(), args...); err != nil {
		h.t.Fatalf("INSERT with BatchParams() = %d parameters: %v", n, err)
	}
	if got := h.count(h.pool, qt, ""); got != int64(rows) {
		h.t.Fatalf("rows %d, want %d", got, rows)
	}
}

// testIgnoreChecker runs INSERT IGNORE … RETURNING in one transaction and
// checks that CheckIgnored tells rows skipped as duplicates (nothing to
// report) from a value stored altered (reported).
func testIgnoreChecker(h *h) {
	ic, ok := h.d.(dialect.IgnoreChecker)
	if !ok {
		h.t.Skip("no dialect.IgnoreChecker")
	}
	if f := h.d.Features(); !f.Has(dialect.OnDuplicateKey) || !f.Has(dialect.Returning) {
		h.t.Skipf("%s lacks INSERT IGNORE or RETURNING, which the check is for", h.d.Server())
	}
	_, qt := h.table("ign", "id INTEGER PRIMARY KEY, k VARCHAR(3) NOT NULL, CONSTRAINT {t}_k UNIQUE (k)")
	tx := h.begin(session.TxOptions{})
	for _, tc := range []struct {
		what    string
		values  string
		sent    int
		altered bool
	}{
		{"a duplicate skipped", "(1, 'a'), (2, 'a')", 2, false},
		{"a value too long", "(3, 'b'), (4, 'toolong')", 2, true},
		{"a duplicate of an earlier row", "(5, 'a'), (6, 'c')", 2, false},
	} {
		returned := len(h.ints(tx, "INSERT IGNORE INTO "+qt+" (id, k) VALUES "+tc.values+" RETURNING id"))
		altered, err := ic.CheckIgnored(h.ctx, tx, tc.sent, returned)
		switch {
		case err != nil:
			h.t.Fatalf("%s: CheckIgnored: %v", tc.what, err)
		case tc.altered && altered == "":
			h.t.Errorf("%s (%d of %d rows back): CheckIgnored reports nothing altered", tc.what, returned, tc.sent)
		case !tc.altered && altered != "":
			h.t.Errorf("%s (%d of %d rows back): CheckIgnored reports %q altered", tc.what, returned, tc.sent, altered)
		}
	}
}
