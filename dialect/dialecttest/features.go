package dialecttest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// Each check here runs when the dialect claims the feature, and proves on
// the server that it works as racefree will use it.

func testReturning(h *h) {
	_, qt := h.table("ret", "id INTEGER PRIMARY KEY, k VARCHAR(20) NOT NULL")
	var id int64
	var k string
	q := "INSERT INTO " + qt + " (id, k) VALUES (" + h.ph(1, 2) + ") RETURNING id, k"
	if err := h.pool.QueryRow(h.ctx, q, int64(1), "a").Scan(&id, &k); err != nil || id != 1 || k != "a" {
		h.t.Fatalf("%s: %d %q %v; want 1 a", q, id, k, err)
	}
	q = "DELETE FROM " + qt + " WHERE id = " + h.d.Placeholder(1) + " RETURNING k"
	if err := h.pool.QueryRow(h.ctx, q, int64(1)).Scan(&k); err != nil || k != "a" {
		h.t.Fatalf("%s: %q %v; want a", q, k, err)
	}
	if n := h.count(h.pool, qt, ""); n != 0 {
		h.t.Fatalf("rows after DELETE … RETURNING: %d, want 0", n)
	}
}

func testUpdateReturning(h *h) {
	_, qt := h.table("uret", "id INTEGER PRIMARY KEY, k VARCHAR(20) NOT NULL")
	h.exec("INSERT INTO " + qt + " (id, k) VALUES (1, 'a')")
	var k string
	q := "UPDATE " + qt + " SET k = " + h.d.Placeholder(1) + " WHERE id = " + h.d.Placeholder(2) + " RETURNING k"
	if err := h.pool.QueryRow(h.ctx, q, "b", int64(1)).Scan(&k); err != nil || k != "b" {
		h.t.Fatalf("%s: %q %v; want b", q, k, err)
	}
}

func testOnConflict(h *h) {
	_, qt := h.table("onc", "id INTEGER PRIMARY KEY, k VARCHAR(20) NOT NULL, v INTEGER NOT NULL, CONSTRAINT {t}_k UNIQUE (k)")
	ins := "INSERT INTO " + qt + " (id, k, v) VALUES (" + h.ph(1, 3) + ")"
	affected := func(q string, args ...any) int64 {
		h.t.Helper()
		res, err := h.pool.Exec(h.ctx, q, args...)
		if err != nil {
			h.t.Fatalf("%s: %v", q, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			h.t.Fatalf("%s: rows affected: %v", q, err)
		}
		return n
	}
	if n := affected(ins+" ON CONFLICT (k) DO NOTHING", int64(1), "a", int64(1)); n != 1 {
		h.t.Errorf("first insert ON CONFLICT DO NOTHING affected %d rows, want 1", n)
	}
	if n := affected(ins+" ON CONFLICT (k) DO NOTHING", int64(2), "a", int64(2)); n != 0 {
		h.t.Errorf("conflicting insert ON CONFLICT DO NOTHING affected %d rows, want 0", n)
	}
	affected(ins+" ON CONFLICT (k) DO UPDATE SET v = excluded.v", int64(3), "a", int64(5))
	if got := h.ints(h.pool, "SELECT v FROM "+qt+" WHERE k = 'a'"); len(got) != 1 || got[0] != 5 {
		h.t.Errorf("after ON CONFLICT DO UPDATE: v = %v, want [5]", got)
	}
	if h.d.Features().Has(dialect.Returning) {
		// A conflict that DO NOTHING skipped returns no row: how racefree
		// learns that it lost the race without an error.
		if got := h.ints(h.pool, ins+" ON CONFLICT (k) DO NOTHING RETURNING id", int64(4), "a", int64(1)); len(got) != 0 {
			h.t.Errorf("skipped insert … RETURNING returned %v, want no row", got)
		}
	}
}

func testOnDuplicateKey(h *h) {
	_, qt := h.table("odk", "id INTEGER PRIMARY KEY, k VARCHAR(20) NOT NULL, v INTEGER NOT NULL, CONSTRAINT {t}_k UNIQUE (k)")
	ins := "INSERT INTO " + qt + " (id, k, v) VALUES (" + h.ph(1, 3) + ")"
	h.exec(ins+" ON DUPLICATE KEY UPDATE v = v + 1", int64(1), "a", int64(1))
	h.exec(ins+" ON DUPLICATE KEY UPDATE v = v + 1", int64(2), "a", int64(1))
	if got := h.ints(h.pool, "SELECT v FROM "+qt); len(got) != 1 || got[0] != 2 {
		h.t.Errorf("after ON DUPLICATE KEY UPDATE twice: v = %v, want [2]", got)
	}
	res, err := h.pool.Exec(h.ctx, "INSERT IGNORE INTO "+qt+" (id, k, v) VALUES ("+h.ph(1, 3)+")", int64(3), "a", int64(9))
	if err != nil {
		h.t.Fatalf("INSERT IGNORE of a duplicate: %v", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 0 {
		h.t.Errorf("INSERT IGNORE of a duplicate affected %d rows (%v), want 0", n, err)
	}
}

func testSavepoints(h *h) {
	_, qt := h.table("sp", "id INTEGER PRIMARY KEY")
	tx := h.begin(session.TxOptions{})
	step := func(q string) {
		h.t.Helper()
		if _, err := tx.Exec(h.ctx, q); err != nil {
			h.t.Fatalf("%s: %v", q, err)
		}
	}
	step("INSERT INTO " + qt + " (id) VALUES (1)")
	step("SAVEPOINT rf_a")
	step("INSERT INTO " + qt + " (id) VALUES (2)")
	step("ROLLBACK TO SAVEPOINT rf_a")
	step("RELEASE SAVEPOINT rf_a")
	// A statement that fails inside a savepoint is undone by rolling
	// back to it, and the transaction goes on, on every engine: this is
	// how racefree runs a statement that may fail in a caller's
	// transaction.
	step("SAVEPOINT rf_b")
	if _, err := tx.Exec(h.ctx, "INSERT INTO "+qt+" (id) VALUES (1)"); err == nil {
		h.t.Fatal("duplicate insert in a savepoint: no error")
	}
	step("ROLLBACK TO SAVEPOINT rf_b")
	step("RELEASE SAVEPOINT rf_b")
	step("INSERT INTO " + qt + " (id) VALUES (3)")
	if err := tx.Commit(h.ctx); err != nil {
		h.t.Fatalf("commit: %v", err)
	}
	if got := h.ints(h.pool, "SELECT id FROM "+qt+" ORDER BY id"); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		h.t.Fatalf("rows %v, want [1 3]", got)
	}
}

// lockedRows creates a table with rows 1 and 2 and returns it with a
// transaction that holds row 1 with lockClause (" FOR UPDATE", say).
func lockedRows(h *h, lockClause string) (qt string, holder session.Tx) {
	h.t.Helper()
	_, qt = h.table("lk", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	h.exec("INSERT INTO " + qt + " (id, n) VALUES (1, 0)")
	h.exec("INSERT INTO " + qt + " (id, n) VALUES (2, 0)")
	holder = h.begin(session.TxOptions{})
	if got := h.ints(holder, "SELECT id FROM "+qt+" WHERE id = 1"+lockClause); len(got) != 1 {
		h.t.Fatalf("SELECT …%s returned %v, want [1]", lockClause, got)
	}
	return qt, holder
}

// waitsFor runs stmt in the background and checks that it does not finish
// while holder is open, and finishes without error once holder commits.
func waitsFor(h *h, holder session.Tx, what string, stmt func(ctx context.Context) error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- stmt(ctx) }()
	select {
	case err := <-done:
		h.t.Fatalf("%s did not wait for the lock (err %v)", what, err)
	case <-time.After(blockedFor):
	}
	if err := holder.Commit(h.ctx); err != nil {
		h.t.Fatalf("commit the lock holder: %v", err)
	}
	if err := <-done; err != nil {
		h.t.Fatalf("%s after the holder committed: %v", what, err)
	}
}

func testForUpdate(h *h) {
	qt, holder := lockedRows(h, " FOR UPDATE")
	waitsFor(h, holder, "an UPDATE of a row locked FOR UPDATE", func(ctx context.Context) error {
		_, err := h.pool.Exec(ctx, "UPDATE "+qt+" SET n = n + 1 WHERE id = 1")
		return err
	})
}

// shareClauses are the spellings of a shared row lock: the standard one
// and MySQL's older one, which MariaDB has alone.
var shareClauses = []string{" FOR SHARE", " LOCK IN SHARE MODE"}

func testForShare(h *h) {
	_, probe := h.table("shp", "id INTEGER PRIMARY KEY")
	clause := ""
	for _, c := range shareClauses {
		tx := h.begin(session.TxOptions{})
		_, err := tx.Exec(h.ctx, "SELECT id FROM "+probe+c)
		_ = tx.Rollback(h.ctx)
		if err == nil {
			clause = c
			break
		}
		h.t.Logf("SELECT …%s: %v", c, err)
	}
	if clause == "" {
		h.t.Fatalf("claims ForShare, but neither %q works", shareClauses)
	}
	qt, holder := lockedRows(h, clause)
	// A second shared lock on the same row is granted at once.
	other := h.begin(session.TxOptions{})
	ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
	defer cancel()
	if _, err := other.Exec(ctx, "SELECT id FROM "+qt+" WHERE id = 1"+clause); err != nil {
		h.t.Fatalf("a second shared lock on the row: %v", err)
	}
	if err := other.Commit(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	waitsFor(h, holder, "an UPDATE of a row locked"+clause, func(ctx context.Context) error {
		_, err := h.pool.Exec(ctx, "UPDATE "+qt+" SET n = n + 1 WHERE id = 1")
		return err
	})
}

func testNoWait(h *h) {
	qt, _ := lockedRows(h, " FOR UPDATE")
	other := h.begin(session.TxOptions{})
	start := time.Now()
	_, err := other.Exec(h.ctx, "SELECT id FROM "+qt+" WHERE id = 1 FOR UPDATE NOWAIT")
	if err == nil {
		h.t.Fatal("FOR UPDATE NOWAIT of a locked row: no error")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		h.t.Errorf("FOR UPDATE NOWAIT failed after %v: it waited", elapsed)
	}
	ce := h.d.Classify(err)
	if ce == nil || ce.Class != dialect.ClassLockNotAcquired || !errors.Is(ce, dialect.ErrLockNotAcquired) {
		h.t.Fatalf("FOR UPDATE NOWAIT of a locked row: classified %v, want lock timeout (err %v)", ce, err)
	}
	h.t.Logf("NOWAIT: code %s: %v", ce.Code, err)
}

func testSkipLocked(h *h) {
	qt, _ := lockedRows(h, " FOR UPDATE")
	other := h.begin(session.TxOptions{})
	ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
	defer cancel()
	got := h.intsCtx(ctx, other, "SELECT id FROM "+qt+" ORDER BY id FOR UPDATE SKIP LOCKED")
	if len(got) != 1 || got[0] != 2 {
		h.t.Fatalf("FOR UPDATE SKIP LOCKED with row 1 locked returned %v, want [2]", got)
	}
}

func testNullsNotDistinct(h *h) {
	name, qt := h.table("nnd", "id INTEGER PRIMARY KEY, k INTEGER, CONSTRAINT {t}_k UNIQUE NULLS NOT DISTINCT (k)")
	h.exec("INSERT INTO " + qt + " (id, k) VALUES (1, NULL)")
	_, err := h.pool.Exec(h.ctx, "INSERT INTO "+qt+" (id, k) VALUES (2, NULL)")
	if c := h.class(err); c != dialect.ClassUniqueViolation {
		h.t.Fatalf("second NULL in a NULLS NOT DISTINCT index: class %v (err %v), want unique violation", c, err)
	}
	if sr, ok := h.d.(dialect.SchemaReader); ok {
		tbl, err := sr.ReadTable(h.ctx, h.pool, name)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, ix := range tbl.Unique {
			if sameSet(ix.Columns, []string{"k"}) && !ix.NullsNotDistinct {
				h.t.Errorf("ReadTable: index %s on (k) not reported NULLS NOT DISTINCT", ix.Name)
			}
		}
	}
}

// testSingleWriter checks that a second write transaction cannot write
// while a first one is open: it either waits for the first to commit, or
// fails with a retryable error (SQLITE_BUSY when its busy timeout is
// shorter than the wait).
func testSingleWriter(h *h) {
	_, qt := h.table("sw", "id INTEGER PRIMARY KEY")
	first := h.begin(session.TxOptions{})
	if _, err := first.Exec(h.ctx, "INSERT INTO "+qt+" (id) VALUES (1)"); err != nil {
		h.t.Fatal(err)
	}
	type outcome struct {
		err error
		at  time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
		defer cancel()
		err := func() error {
			tx, err := h.pool.Begin(ctx, session.TxOptions{})
			if err != nil {
				return err
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(ctx, "INSERT INTO "+qt+" (id) VALUES (2)"); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}()
		done <- outcome{err, time.Now()}
	}()
	time.Sleep(blockedFor)
	committed := time.Now()
	if err := first.Commit(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	o := <-done
	switch {
	case o.err == nil && o.at.Before(committed):
		h.t.Fatal("a second write transaction committed while the first was open: not a single writer")
	case o.err != nil && !h.d.Classify(o.err).Class.Retryable():
		h.t.Fatalf("second writer: %v (class %v), want it to wait or fail retryably", o.err, h.class(o.err))
	case o.err != nil:
		h.t.Logf("second writer failed retryably instead of waiting: %v", o.err)
	}
}

// testFailedStatement checks FailedStatementAbortsTx both ways: a
// dialect that claims it must have a transaction refuse statements after
// one failed, and a dialect that does not must have it go on.
func testFailedStatement(h *h) {
	_, qt := h.table("fsa", "id INTEGER PRIMARY KEY")
	h.exec("INSERT INTO " + qt + " (id) VALUES (1)")
	tx := h.begin(session.TxOptions{})
	if _, err := tx.Exec(h.ctx, "INSERT INTO "+qt+" (id) VALUES (2)"); err != nil {
		h.t.Fatal(err)
	}
	_, err := tx.Exec(h.ctx, "INSERT INTO "+qt+" (id) VALUES (1)")
	if err == nil {
		h.t.Fatal("a duplicate INSERT in a transaction did not fail at the statement (does the engine check unique keys only at COMMIT?)")
	}
	if c := h.class(err); c != dialect.ClassUniqueViolation {
		h.t.Fatalf("duplicate insert: class %v (err %v), want unique violation", c, err)
	}
	_, err = tx.Exec(h.ctx, "INSERT INTO "+qt+" (id) VALUES (3)")
	claims := h.d.Features().Has(dialect.FailedStatementAbortsTx)
	switch {
	case claims && err == nil:
		h.t.Fatal("claims FailedStatementAbortsTx, but the transaction ran a statement after one failed")
	case !claims && err != nil:
		h.t.Fatalf("does not claim FailedStatementAbortsTx, but after a failed statement the transaction refused: %v", err)
	case claims:
		return
	}
	if err := tx.Commit(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	if got := h.ints(h.pool, "SELECT id FROM "+qt+" ORDER BY id"); len(got) != 3 {
		h.t.Fatalf("rows %v, want [1 2 3]: the failed statement undid more than itself", got)
	}
}

func testSerializable(h *h) {
	_, qt := h.table("ser", "id INTEGER PRIMARY KEY")
	tx := h.begin(session.TxOptions{Isolation: levelSerializable})
	h.count(tx, qt, "")
	if _, err := tx.Exec(h.ctx, "INSERT INTO "+qt+" (id) VALUES (1)"); err != nil {
		h.t.Fatal(err)
	}
	if err := tx.Commit(h.ctx); err != nil {
		h.t.Fatal(err)
	}
}

func testReadOnly(h *h) {
	_, qt := h.table("ro", "id INTEGER PRIMARY KEY")
	tx := h.begin(session.TxOptions{ReadOnly: true})
	h.count(tx, qt, "")
	if _, err := tx.Exec(h.ctx, "INSERT INTO "+qt+" (id) VALUES (1)"); err == nil {
		h.t.Fatal("a read-only transaction wrote a row")
	}
}

func testPrepare(h *h) {
	p, ok := h.pool.(session.Preparer)
	if !ok {
		h.t.Skip("the pool Config.Open returned prepares nothing (no session.Preparer)")
	}
	_, qt := h.table("prep", "id INTEGER PRIMARY KEY, v INTEGER NOT NULL")
	h.exec("INSERT INTO " + qt + " (id, v) VALUES (1, 10)")
	h.exec("INSERT INTO " + qt + " (id, v) VALUES (2, 20)")
	st, err := p.Prepare(h.ctx, "SELECT v FROM "+qt+" WHERE id = "+h.d.Placeholder(1))
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	for id, want := range map[int64]int64{1: 10, 2: 20} {
		var v int64
		if err := st.QueryRow(h.ctx, id).Scan(&v); err != nil || v != want {
			h.t.Errorf("prepared statement with %d: %d, %v; want %d", id, v, err, want)
		}
	}
}

// testClientRetries forces a write-write conflict between two
// transactions at the default level: each reads a counter, both wait, then
// each writes what it read plus one. An engine that expects clients to
// retry must fail one of them with a serialization failure rather than
// let one increment overwrite the other.
func testClientRetries(h *h) {
	_, qt := h.table("cr", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	h.exec("INSERT INTO " + qt + " (id, n) VALUES (1, 0)")
	b := newBarrier(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
			defer cancel()
			errs[i] = func() error {
				tx, err := h.pool.Begin(ctx, session.TxOptions{})
				if err != nil {
					return err
				}
				defer tx.Rollback(context.Background())
				var n int64
				if err := tx.QueryRow(ctx, "SELECT n FROM "+qt+" WHERE id = 1").Scan(&n); err != nil {
					return err
				}
				b.wait(h.t)
				if _, err := tx.Exec(ctx, "UPDATE "+qt+" SET n = "+h.d.Placeholder(1)+" WHERE id = 1", n+1); err != nil {
					return err
				}
				return tx.Commit(ctx)
			}()
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if c := h.class(err); c != dialect.ClassSerialization {
			h.t.Errorf("conflicting write: class %v (err %v), want serialization failure", c, err)
		}
	}
	n := h.ints(h.pool, "SELECT n FROM "+qt)
	switch {
	case failed == 0:
		h.t.Fatalf("claims ClientRetries, but two conflicting writes both committed (n = %v): one increment was lost", n)
	case failed == 2:
		h.t.Logf("both conflicting writes failed: %v", errs)
	}
}
