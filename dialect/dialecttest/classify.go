package dialecttest

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// testClassifyNotFromServer checks the errors every dialect classifies
// alike, without a server: nil, plain errors, context errors, a
// connection that failed before sending, and errors already classified.
func testClassifyNotFromServer(h *h) {
	if ce := h.d.Classify(nil); ce != nil {
		h.t.Errorf("Classify(nil) = %v, want nil", ce)
	}
	plain := errors.New("plain")
	if ce := h.d.Classify(plain); ce == nil || ce.Class != dialect.ClassOther || !errors.Is(ce, plain) || ce.Error() != plain.Error() {
		h.t.Errorf("Classify(plain) = %#v, want ClassOther wrapping it unchanged", ce)
	}
	for _, tc := range []struct {
		err  error
		want dialect.Class
	}{
		{context.Canceled, dialect.ClassCanceled},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), dialect.ClassCanceled},
		{fmt.Errorf("conn: %w", driver.ErrBadConn), dialect.ClassNotSent},
		{fmt.Errorf("outer: %w", &dialect.Error{Class: dialect.ClassDeadlock, Err: plain}), dialect.ClassDeadlock},
	} {
		if got := h.class(tc.err); got != tc.want {
			h.t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// checkClassified checks what every classified server error must carry:
// its class, the class's sentinel for errors.Is, the driver's message
// unchanged, an engine code, and the same class through wrapping.
func checkClassified(h *h, what string, err error, want dialect.Class) *dialect.Error {
	h.t.Helper()
	ce := h.d.Classify(err)
	switch {
	case err == nil:
		h.t.Fatalf("%s: no error", what)
	case ce == nil || ce.Class != want:
		h.t.Fatalf("%s: classified %v, want %v (err %v)", what, ce, want, err)
	case ce.Error() != err.Error():
		h.t.Errorf("%s: classified message %q differs from the driver's %q", what, ce.Error(), err.Error())
	case ce.Code == "":
		h.t.Errorf("%s: no engine code on a server error (err %v)", what, err)
	case h.class(fmt.Errorf("wrapped: %w", err)) != want:
		h.t.Errorf("%s: wrapped, it is classified %v", what, h.class(fmt.Errorf("wrapped: %w", err)))
	}
	return ce
}

// testClassifyUnique provokes unique violations of the primary key, a
// one-column and a two-column unique constraint, and checks that each
// names its index as racefree needs to tell a lost race on the lookup's
// own index from a conflict on another: by its columns, or by its name as
// the catalog (SchemaReader) reports it.
func testClassifyUnique(h *h) {
	name, qt := h.table("uniq", "id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL, a INTEGER, b INTEGER, "+
		"CONSTRAINT {t}_email UNIQUE (email), CONSTRAINT {t}_ab UNIQUE (a, b)")
	h.exec("INSERT INTO " + qt + " (id, email, a, b) VALUES (1, 'a@x', 1, 1)")
	var catalog *dialect.Table
	if sr, ok := h.d.(dialect.SchemaReader); ok {
		var err error
		if catalog, err = sr.ReadTable(h.ctx, h.pool, name); err != nil {
			h.t.Fatalf("ReadTable: %v", err)
		}
	}
	for _, tc := range []struct {
		what       string
		stmt       string
		cols       []string
		constraint string // as declared; "" for the primary key
	}{
		{"one-column unique", "INSERT INTO " + qt + " (id, email, a, b) VALUES (2, 'a@x', 2, 2)", []string{"email"}, name + "_email"},
		{"two-column unique", "INSERT INTO " + qt + " (id, email, a, b) VALUES (3, 'b@x', 1, 1)", []string{"a", "b"}, name + "_ab"},
		{"primary key", "INSERT INTO " + qt + " (id, email, a, b) VALUES (1, 'c@x', 3, 3)", []string{"id"}, ""},
	} {
		_, err := h.pool.Exec(h.ctx, tc.stmt)
		ce := checkClassified(h, tc.what, err, dialect.ClassUniqueViolation)
		if !errors.Is(ce, dialect.ErrUniqueViolation) || !errors.Is(ce, dialect.ErrIntegrity) {
			h.t.Errorf("%s: errors.Is ErrUniqueViolation %v, ErrIntegrity %v; want both", tc.what,
				errors.Is(ce, dialect.ErrUniqueViolation), errors.Is(ce, dialect.ErrIntegrity))
		}
		if why := namesIndex(ce, name, tc.cols, tc.constraint, catalog); why != "" {
			h.t.Errorf("%s: %s (Constraint %q, Columns %q; err %v)", tc.what, why, ce.Constraint, ce.Columns, err)
		}
	}
}

// namesIndex explains why ce does not identify the unique index on cols
// of table, or returns "".
func namesIndex(ce *dialect.Error, table string, cols []string, constraint string, catalog *dialect.Table) string {
	if len(ce.Columns) > 0 {
		named := make([]string, len(ce.Columns))
		for i, c := range ce.Columns {
			named[i] = strings.TrimPrefix(c, table+".")
		}
		if !sameSet(named, cols) {
			return fmt.Sprintf("Columns name %q, want the columns %q", named, cols)
		}
		return ""
	}
	if ce.Constraint == "" {
		return "names neither its constraint nor its columns: a lost race cannot be told from a conflict on another index"
	}
	if catalog != nil {
		for _, ix := range catalog.Unique {
			if ix.Name == ce.Constraint {
				if !sameSet(ix.Columns, cols) {
					return fmt.Sprintf("Constraint names catalog index %s on %q, want the one on %q", ix.Name, ix.Columns, cols)
				}
				return ""
			}
		}
		return fmt.Sprintf("Constraint %q is no unique index the catalog (ReadTable) reports", ce.Constraint)
	}
	if constraint != "" && ce.Constraint != constraint {
		return fmt.Sprintf("Constraint %q, want %q", ce.Constraint, constraint)
	}
	return ""
}

// testClassifyIntegrity provokes a not-null, a check and two foreign key
// violations, and checks their classes, the ErrIntegrity umbrella, and
// the names the engine gives, when it gives them.
func testClassifyIntegrity(h *h) {
	_, parent := h.table("fkp", "id INTEGER PRIMARY KEY")
	child, qc := h.table("fkc", "id INTEGER PRIMARY KEY, req INTEGER NOT NULL, n INTEGER, p INTEGER, "+
		"CONSTRAINT {t}_n_pos CHECK (n > 0), CONSTRAINT {t}_p_fk FOREIGN KEY (p) REFERENCES "+parent+" (id)")
	h.exec("INSERT INTO " + parent + " (id) VALUES (1)")
	h.exec("INSERT INTO " + qc + " (id, req, p) VALUES (10, 1, 1)")
	for _, tc := range []struct {
		what       string
		stmt       string
		class      dialect.Class
		sentinel   error
		constraint string
		column     string
	}{
		{"not null", "INSERT INTO " + qc + " (id, req) VALUES (1, NULL)", dialect.ClassNotNullViolation, dialect.ErrNotNullViolation, "", "req"},
		{"check", "INSERT INTO " + qc + " (id, req, n) VALUES (2, 1, -1)", dialect.ClassCheckViolation, dialect.ErrCheckViolation, child + "_n_pos", ""},
		{"foreign key, child", "INSERT INTO " + qc + " (id, req, p) VALUES (3, 1, 42)", dialect.ClassForeignKeyViolation, dialect.ErrForeignKeyViolation, child + "_p_fk", ""},
		{"foreign key, parent", "DELETE FROM " + parent + " WHERE id = 1", dialect.ClassForeignKeyViolation, dialect.ErrForeignKeyViolation, child + "_p_fk", ""},
	} {
		_, err := h.pool.Exec(h.ctx, tc.stmt)
		if err == nil && tc.class == dialect.ClassCheckViolation {
			// TiDB accepts CHECK constraints and ignores them unless
			// tidb_enable_check_constraint is on: nothing to classify.
			h.t.Logf("%s: the engine does not enforce CHECK constraints", h.d.Server())
			continue
		}
		ce := checkClassified(h, tc.what, err, tc.class)
		if !errors.Is(ce, tc.sentinel) || !errors.Is(ce, dialect.ErrIntegrity) || errors.Is(ce, dialect.ErrUniqueViolation) {
			h.t.Errorf("%s: errors.Is: sentinel %v, ErrIntegrity %v, ErrUniqueViolation %v; want true, true, false", tc.what,
				errors.Is(ce, tc.sentinel), errors.Is(ce, dialect.ErrIntegrity), errors.Is(ce, dialect.ErrUniqueViolation))
		}
		if ce.Constraint != "" && tc.constraint != "" && ce.Constraint != tc.constraint {
			h.t.Errorf("%s: Constraint %q, want %q", tc.what, ce.Constraint, tc.constraint)
		}
		if len(ce.Columns) > 0 && tc.column != "" && !slices.Equal(ce.Columns, []string{tc.column}) && !slices.Equal(ce.Columns, []string{child + "." + tc.column}) {
			h.t.Errorf("%s: Columns %q, want [%q] or [%q]", tc.what, ce.Columns, tc.column, child+"."+tc.column)
		}
		if (tc.constraint != "" && ce.Constraint == "") || (tc.column != "" && len(ce.Columns) == 0) {
			h.t.Logf("%s: the engine names no constraint or column (Constraint %q, Columns %q)", tc.what, ce.Constraint, ce.Columns)
		}
	}
}

// race runs two transactions, each calling body with its index and a
// barrier both reach before their conflicting statement, and returns
// their errors. Each transaction commits when its body succeeds.
func race(h *h, opts session.TxOptions, body func(ctx context.Context, tx session.Tx, i int, b *barrier) error) []error {
	h.t.Helper()
	b := newBarrier(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(h.ctx, waitTimeout)
			defer cancel()
			errs[i] = func() error {
				tx, err := h.pool.Begin(ctx, opts)
				if err != nil {
					return err
				}
				defer tx.Rollback(context.Background())
				if err := body(ctx, tx, i, b); err != nil {
					return err
				}
				return tx.Commit(ctx)
			}()
		})
	}
	wg.Wait()
	return errs
}

// failures returns the errors that are not nil.
func failures(errs []error) []error {
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// testClassifyDeadlock drives two transactions into a deadlock: each
// updates one row, both wait, then each updates the other's row. The
// server must end one with an error classified as a deadlock (or, on
// engines that resolve conflicts by aborting, a serialization failure).
func testClassifyDeadlock(h *h) {
	if h.d.Features().Has(dialect.SingleWriter) {
		h.t.Skipf("%s has a single writer: its write transactions queue and cannot deadlock", h.d.Server())
	}
	_, qt := h.table("dl", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	h.exec("INSERT INTO " + qt + " (id, n) VALUES (1, 0)")
	h.exec("INSERT INTO " + qt + " (id, n) VALUES (2, 0)")
	errs := race(h, session.TxOptions{}, func(ctx context.Context, tx session.Tx, i int, b *barrier) error {
		order := [2][2]int{{1, 2}, {2, 1}}[i]
		if _, err := tx.Exec(ctx, "UPDATE "+qt+" SET n = n + 1 WHERE id = "+fmt.Sprint(order[0])); err != nil {
			return err
		}
		b.wait(h.t)
		_, err := tx.Exec(ctx, "UPDATE "+qt+" SET n = n + 1 WHERE id = "+fmt.Sprint(order[1]))
		return err
	})
	failed := failures(errs)
	if len(failed) == 0 {
		h.t.Fatal("crossed updates both committed: no deadlock was forced")
	}
	for _, err := range failed {
		ce := h.d.Classify(err)
		switch {
		case ce.Class != dialect.ClassDeadlock && ce.Class != dialect.ClassSerialization:
			h.t.Errorf("deadlock victim: classified %v, want deadlock or serialization failure (err %v)", ce.Class, err)
		case !ce.Class.Retryable():
			h.t.Errorf("deadlock victim: class %v is not retryable", ce.Class)
		case ce.Class == dialect.ClassDeadlock && !errors.Is(ce, dialect.ErrDeadlock):
			h.t.Error("deadlock victim: errors.Is(classified, ErrDeadlock) = false")
		}
		h.t.Logf("deadlock victim: %v → %v", err, ce.Class)
	}
}

// testClassifySerialization drives two SERIALIZABLE transactions into
// write skew: each reads the sum of two rows, both wait, then each writes
// sum+1 into its own row. Run one after the other the sums end 1 and 2;
// together and unprotected both would write 1. The engine must fail one
// with a retryable class: a serialization failure (PostgreSQL's SSI,
// CockroachDB) or a deadlock (MySQL, whose SERIALIZABLE reads take shared
// locks).
func testClassifySerialization(h *h) {
	switch f := h.d.Features(); {
	case !f.Has(dialect.SerializableIsolation):
		h.t.Skipf("%s does not claim SERIALIZABLE", h.d.Server())
	case f.Has(dialect.SingleWriter):
		h.t.Skipf("%s has a single writer: no write skew to resolve", h.d.Server())
	}
	_, qt := h.table("ws", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	h.exec("INSERT INTO " + qt + " (id, n) VALUES (1, 0)")
	h.exec("INSERT INTO " + qt + " (id, n) VALUES (2, 0)")
	errs := race(h, session.TxOptions{Isolation: levelSerializable}, func(ctx context.Context, tx session.Tx, i int, b *barrier) error {
		var sum int64
		if err := tx.QueryRow(ctx, "SELECT SUM(n) FROM "+qt).Scan(&sum); err != nil {
			return err
		}
		b.wait(h.t)
		_, err := tx.Exec(ctx, "UPDATE "+qt+" SET n = "+h.d.Placeholder(1)+" WHERE id = "+h.d.Placeholder(2), sum+1, int64(i+1))
		return err
	})
	failed := failures(errs)
	if len(failed) == 0 {
		h.t.Fatalf("write skew committed at SERIALIZABLE: sums %v", h.ints(h.pool, "SELECT n FROM "+qt+" ORDER BY id"))
	}
	for _, err := range failed {
		ce := h.d.Classify(err)
		if ce.Class != dialect.ClassSerialization && ce.Class != dialect.ClassDeadlock {
			h.t.Errorf("write skew: classified %v, want serialization failure or deadlock (err %v)", ce.Class, err)
		}
		if !ce.Class.Retryable() {
			h.t.Errorf("write skew: class %v is not retryable", ce.Class)
		}
		h.t.Logf("write skew: %v → %v", err, ce.Class)
	}
}

// testClassifyCanceled cancels Config.SlowQuery through its context.
func testClassifyCanceled(h *h) {
	if h.cfg.SlowQuery == "" {
		h.t.Skip("no Config.SlowQuery")
	}
	ctx, cancel := context.WithTimeout(h.ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.pool.Exec(ctx, h.cfg.SlowQuery)
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		h.t.Errorf("canceled query returned after %v", elapsed)
	}
	ce := h.d.Classify(err)
	if ce == nil || ce.Class != dialect.ClassCanceled || !errors.Is(ce, dialect.ErrCanceled) {
		h.t.Fatalf("canceled query: classified %v, want canceled (err %v)", ce, err)
	}
}

// testClassifyConnectionLost ends a session with Config.KillSession and
// uses it again.
func testClassifyConnectionLost(h *h) {
	if h.cfg.KillSession == nil {
		h.t.Skip("no Config.KillSession")
	}
	conn, err := h.pool.Acquire(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(h.ctx, "SELECT 1"); err != nil {
		h.t.Fatal(err)
	}
	if err := h.cfg.KillSession(h.ctx, h.pool, conn); err != nil {
		h.t.Fatalf("Config.KillSession: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // let the server close the socket
	_, err = conn.Exec(h.ctx, "SELECT 1")
	ce := h.d.Classify(err)
	if ce == nil || (ce.Class != dialect.ClassConnection && ce.Class != dialect.ClassNotSent) {
		h.t.Fatalf("statement on a killed session: classified %v, want connection lost or not sent (err %v)", ce, err)
	}
	h.t.Logf("killed session: %v → %v", err, ce.Class)
}

// sameSet reports whether a and b hold the same names, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
