package dialecttest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

func testClassifyUnique(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	tbl := testdb.CreateTable(t, db, "uniq", "id {{id}}, email {{text}} NOT NULL, CONSTRAINT {{table}}_email UNIQUE (email)")
	ctx := context.Background()
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (email) VALUES ('a@x')")
	_, err := db.SQL().ExecContext(ctx, "INSERT INTO "+tbl+" (email) VALUES ('a@x')")
	ce := db.Classify(err)
	if ce == nil || ce.Class != dialect.ClassUniqueViolation {
		t.Fatalf("duplicate insert: class %v, want unique violation (err %v)", ce, err)
	}
	if !errors.Is(ce, racefree.ErrUniqueViolation) {
		t.Fatal("errors.Is(classified, ErrUniqueViolation) = false")
	}
	if ce.Error() != err.Error() {
		t.Fatalf("classified message %q differs from the driver's %q", ce.Error(), err.Error())
	}
	switch db.Dialect().Name() {
	case "sqlite":
		if len(ce.Columns) != 1 || ce.Columns[0] != tbl+".email" {
			t.Fatalf("Columns = %v, want [%s.email]", ce.Columns, tbl)
		}
	default:
		if ce.Constraint != tbl+"_email" {
			t.Fatalf("Constraint = %q, want %q", ce.Constraint, tbl+"_email")
		}
	}
	// The primary key is a unique constraint too.
	_, err = db.SQL().ExecContext(ctx, "INSERT INTO "+tbl+" (id, email) VALUES (1, 'b@x')")
	if c := db.Classify(err).Class; c != dialect.ClassUniqueViolation {
		t.Fatalf("primary key violation classified as %v (err %v)", c, err)
	}
	if db.Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
	if c := db.Classify(errors.New("plain")).Class; c != dialect.ClassOther {
		t.Fatalf("plain error classified as %v", c)
	}
}

// testClassifyIntegrity provokes each integrity violation on the real
// server and checks its class, the names the engine gives, and the
// ErrIntegrity umbrella.
func testClassifyIntegrity(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	ctx := context.Background()
	parent := testdb.CreateTable(t, db, "fk_parent", "id INTEGER PRIMARY KEY")
	child := testdb.CreateTable(t, db, "fk_child", "id INTEGER PRIMARY KEY, req INTEGER NOT NULL, n INTEGER, p INTEGER, "+
		"CONSTRAINT {{table}}_n_pos CHECK (n > 0), CONSTRAINT {{table}}_p_fk FOREIGN KEY (p) REFERENCES "+parent+" (id)")
	testdb.Exec(t, db, "INSERT INTO "+parent+" (id) VALUES (1)")
	for _, tc := range []struct {
		name       string
		stmt       string
		class      dialect.Class
		sentinel   error
		constraint string // "" when the engine does not say
		column     string
	}{
		{"not null", "INSERT INTO " + child + " (id, req) VALUES (1, NULL)", dialect.ClassNotNullViolation, racefree.ErrNotNullViolation, "", "req"},
		{"check", "INSERT INTO " + child + " (id, req, n) VALUES (2, 1, -1)", dialect.ClassCheckViolation, racefree.ErrCheckViolation, child + "_n_pos", ""},
		{"foreign key", "INSERT INTO " + child + " (id, req, p) VALUES (3, 1, 42)", dialect.ClassForeignKeyViolation, racefree.ErrForeignKeyViolation, child + "_p_fk", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.SQL().ExecContext(ctx, tc.stmt)
			ce := db.Classify(err)
			if ce == nil || ce.Class != tc.class {
				t.Fatalf("class %v, want %v (err %v)", ce, tc.class, err)
			}
			if !errors.Is(ce, tc.sentinel) || !errors.Is(ce, racefree.ErrIntegrity) || errors.Is(ce, racefree.ErrUniqueViolation) {
				t.Fatalf("errors.Is: sentinel %v, ErrIntegrity %v, ErrUniqueViolation %v",
					errors.Is(ce, tc.sentinel), errors.Is(ce, racefree.ErrIntegrity), errors.Is(ce, racefree.ErrUniqueViolation))
			}
			name := db.Dialect().Name()
			if tc.constraint != "" && (name != "sqlite" || tc.class == dialect.ClassCheckViolation) && ce.Constraint != tc.constraint {
				t.Errorf("Constraint = %q, want %q (err %v)", ce.Constraint, tc.constraint, err)
			}
			if tc.column != "" {
				want := tc.column
				if name == "sqlite" {
					want = child + "." + tc.column
				}
				if len(ce.Columns) != 1 || ce.Columns[0] != want {
					t.Errorf("Columns = %q, want [%q] (err %v)", ce.Columns, want, err)
				}
			}
		})
	}
}

// testClassifyLockTimeout holds a write lock in one transaction and lets a
// second run into it with a short timeout. SQLite has no row locks; its
// equivalent is SQLITE_BUSY after the busy timeout.
func testClassifyLockTimeout(t *testing.T, e testdb.Engine) {
	dsn := e.DSN(t)
	db := testdb.Open(t, dsn)
	tbl := testdb.CreateTable(t, db, "lockto", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES (1, 0)")
	ctx := context.Background()

	holder, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	want := dialect.ClassLockTimeout
	other := db
	var setup string
	switch db.Dialect().Name() {
	case "postgres":
		setup = "SET LOCAL lock_timeout = '100ms'"
	case "mysql":
		setup = "SET SESSION innodb_lock_wait_timeout = 1"
	case "sqlite":
		want = dialect.ClassBusy
		other = testdb.Open(t, dsn+"?_pragma=busy_timeout(50)")
	}
	start := time.Now()
	err = racefree.RunInTx(ctx, other, racefree.TxOptions{MaxAttempts: 1}, func(ctx context.Context, tx *racefree.Tx) error {
		if setup != "" {
			if _, err := tx.ExecContext(ctx, setup); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 10 WHERE id = 1")
		return err
	})
	if got := other.Classify(err); got == nil || got.Class != want {
		t.Fatalf("blocked update after %v: got %v (%v), want class %v", time.Since(start), got, err, want)
	}
	if want == dialect.ClassLockTimeout && !errors.Is(err, racefree.ErrLockTimeout) {
		t.Fatalf("errors.Is(err, ErrLockTimeout) = false for %v", err)
	}
}

func testClassifyCanceled(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	slow := map[string]string{
		"postgres": "SELECT pg_sleep(5)",
		"mysql":    "SELECT SLEEP(5)",
		// A recursive count that takes seconds; SQLite checks for
		// interruption between steps.
		"sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000000) SELECT count(*) FROM c",
	}[db.Dialect().Name()]
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := db.SQL().ExecContext(ctx, slow)
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("canceled query returned after %v", elapsed)
	}
	if got := db.Classify(err); got == nil || got.Class != dialect.ClassCanceled {
		t.Fatalf("canceled query: got %v (%v), want canceled", got, err)
	}
	if !errors.Is(db.Classify(err), racefree.ErrCanceled) {
		t.Fatal("errors.Is(err, ErrCanceled) = false")
	}
}

// testClassifyConnectionLost kills the session from another connection and
// uses it again.
func testClassifyConnectionLost(t *testing.T, e testdb.Engine) {
	db := e.Open(t)
	if db.Dialect().Name() == "sqlite" {
		t.Skip("SQLite is embedded: there is no connection to lose")
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	killSession(t, db, sessionID(t, db, conn.SQL()))
	_, err = conn.SQL().ExecContext(ctx, "SELECT 1")
	got := db.Classify(err)
	if got == nil || (got.Class != dialect.ClassConnection && got.Class != dialect.ClassNotSent) {
		t.Fatalf("query on a killed session: got %v (%v), want connection lost or not sent", got, err)
	}
	t.Logf("killed session: %v → %v", err, got.Class)
}

// sessionID returns the server's id for the session q runs on.
func sessionID(tb testing.TB, db *racefree.DB, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int64 {
	tb.Helper()
	idQuery := "SELECT pg_backend_pid()"
	if db.Dialect().Name() == "mysql" {
		idQuery = "SELECT CONNECTION_ID()"
	}
	var id int64
	if err := q.QueryRowContext(context.Background(), idQuery).Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return id
}

// killSession terminates a server session from another connection and
// gives the server a moment to close its socket.
func killSession(tb testing.TB, db *racefree.DB, id int64) {
	tb.Helper()
	killQuery := "SELECT pg_terminate_backend($1)"
	if db.Dialect().Name() == "mysql" {
		killQuery = "KILL ?"
	}
	if _, err := db.SQL().ExecContext(context.Background(), killQuery, id); err != nil {
		tb.Fatalf("kill session %d: %v", id, err)
	}
	time.Sleep(100 * time.Millisecond)
}
