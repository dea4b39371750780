package pgxrf_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/pgxrf"
	"github.com/racefree/racefree/session"
)

type user struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
	Name  string `db:"name"`
}

const usersDDL = `id {{id}}, email {{text}} NOT NULL, name {{text}} NOT NULL DEFAULT '', n INTEGER,
	CONSTRAINT {{table}}_email UNIQUE (email)`

func TestNew_Verbs(t *testing.T) {
	_, check, db, _ := open(t, 4)
	ctx := context.Background()
	table := testdb.CreateTable(t, check, "pgxrf_verbs", usersDDL)
	if got := db.Dialect().Name(); got != "postgres" {
		t.Fatalf("dialect %q", got)
	}
	if db.SQL() != nil {
		t.Fatal("SQL() of a pgx DB is not nil")
	}

	u, created, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "a@x"}, racefree.Values{"name": "Ann"}, racefree.Options{})
	if err != nil || !created || u.ID == 0 || u.Name != "Ann" {
		t.Fatalf("miss: %+v created=%v err=%v", u, created, err)
	}
	u2, created, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "a@x"}, racefree.Values{"name": "Other"}, racefree.Options{})
	if err != nil || created || u2 != u {
		t.Fatalf("hit: %+v created=%v err=%v, want %+v", u2, created, err, u)
	}
	row, created, err := racefree.CreateOrGet[racefree.Values](ctx, db, table, racefree.Values{"email": "b@x"}, racefree.Values{"n": 7}, racefree.Options{})
	if err != nil || !created || row["n"] != int64(7) || row["email"] != "b@x" {
		t.Fatalf("create-or-get: %#v created=%v err=%v", row, created, err)
	}
	v, created, err := racefree.UpdateOrCreate[user](ctx, db, table, racefree.Values{"email": "a@x"}, racefree.Values{"name": "Anna"}, racefree.Options{})
	if err != nil || created || v.Name != "Anna" || v.ID != u.ID {
		t.Fatalf("update-or-create: %+v created=%v err=%v", v, created, err)
	}
	res, err := racefree.GetOrCreateMany[user](ctx, db, table, []racefree.Item{
		{Lookup: racefree.Values{"email": "a@x"}, Defaults: racefree.Values{"name": "A"}}, {Lookup: racefree.Values{"email": "c@x"}, Defaults: racefree.Values{"name": "C"}},
	}, racefree.Options{})
	if err != nil || len(res) != 2 || res[0].Created || !res[1].Created || res[0].Row.ID != u.ID || res[1].Row.Name != "C" {
		t.Fatalf("many: %+v err=%v", res, err)
	}
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table); n != 3 {
		t.Fatalf("rows = %d, want 3", n)
	}
}

func TestSession_NoRowsAndRowsAffected(t *testing.T) {
	_, check, db, _ := open(t, 2)
	ctx := context.Background()
	table := testdb.CreateTable(t, check, "pgxrf_session", usersDDL)
	s := db.Session()
	var id int64
	err := s.QueryRow(ctx, "SELECT id FROM "+table+" WHERE email = $1", "none").Scan(&id)
	if err != session.ErrNoRows || !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("no row: %v (%T), want session.ErrNoRows", err, err)
	}
	var anyID any
	if err := s.QueryRow(ctx, "SELECT id FROM "+table+" WHERE email = $1", "none").Scan(&anyID); err != session.ErrNoRows {
		t.Fatalf("no row into *any: %v, want session.ErrNoRows", err)
	}
	res, err := s.Exec(ctx, "INSERT INTO "+table+" (email) VALUES ($1), ($2), ($3)", "1", "2", "3")
	must(t, err)
	if n, err := res.RowsAffected(); n != 3 || err != nil {
		t.Fatalf("RowsAffected = %d, %v; want 3", n, err)
	}
	rows, err := s.Query(ctx, "SELECT id, email FROM "+table+" ORDER BY id")
	must(t, err)
	var emails []string
	for rows.Next() {
		var id, email any
		must(t, rows.Scan(&id, &email))
		if _, ok := id.(int64); !ok {
			t.Fatalf("id scanned into *any is %T, want int64", id)
		}
		emails = append(emails, email.(string))
	}
	must(t, rows.Close())
	if strings.Join(emails, ",") != "1,2,3" {
		t.Fatalf("emails %v", emails)
	}
	// A query error shows on Close and Err, as with database/sql.
	rows, err = s.Query(ctx, "SELECT 1/0")
	if err == nil {
		for rows.Next() {
		}
		err = rows.Close()
	}
	if ce := db.Classify(err); ce == nil || ce.Code != "22012" {
		t.Fatalf("division by zero: %v, want SQLSTATE 22012", err)
	}
}

func TestRunInTx_PgxTx(t *testing.T) {
	_, check, db, pool := open(t, 4)
	ctx := context.Background()
	table := testdb.CreateTable(t, check, "pgxrf_runintx", usersDDL)

	// Commit: the pgx.Tx and racefree's verbs share the transaction.
	err := pgxrf.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (email, name) VALUES ('own@x', 'own')"); err != nil {
			return err
		}
		rtx := pgxrf.WrapTx(db, tx, nil)
		if iso, known := rtx.Isolation(); !known || iso != sql.LevelRepeatableRead {
			t.Errorf("isolation inside RunInTx: %v known=%v", iso, known)
		}
		if pgxrf.WrapTx(db, tx, nil) != rtx {
			t.Error("WrapTx inside RunInTx returned another handle")
		}
		u, created, err := racefree.GetOrCreate[user](ctx, rtx, table, racefree.Values{"email": "own@x"}, nil, racefree.Options{})
		if err != nil || created || u.Name != "own" {
			t.Errorf("GetOrCreate sees the transaction's own row: %+v created=%v err=%v", u, created, err)
		}
		if err := tx.Commit(ctx); err == nil {
			t.Error("Commit inside RunInTx did not refuse")
		}
		if err := tx.Rollback(ctx); err == nil {
			t.Error("Rollback inside RunInTx did not refuse")
		}
		_, _, err = racefree.GetOrCreate[user](ctx, rtx, table, racefree.Values{"email": "new@x"}, nil, racefree.Options{})
		return err
	})
	must(t, err)
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table); n != 2 {
		t.Fatalf("rows after commit = %d, want 2", n)
	}

	// An error from fn rolls everything back, and is returned as is.
	errStop := errors.New("stop")
	err = pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		if _, _, err := racefree.GetOrCreate[user](ctx, pgxrf.WrapTx(db, tx, nil), table, racefree.Values{"email": "gone@x"}, nil, racefree.Options{}); err != nil {
			return err
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("err = %v, want errStop", err)
	}
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table); n != 2 {
		t.Fatalf("rows after rollback = %d, want 2", n)
	}

	// Nested: a savepoint inside the outer transaction.
	err = pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		rtx := pgxrf.WrapTx(db, tx, nil)
		inner := pgxrf.RunInTx(ctx, rtx, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (email) VALUES ('inner@x')"); err != nil {
				return err
			}
			return errStop
		})
		if !errors.Is(inner, errStop) {
			t.Errorf("inner: %v", inner)
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+table+" (email) VALUES ('outer@x')")
		return err
	})
	must(t, err)
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table+" WHERE email IN ('inner@x', 'outer@x')"); n != 1 {
		t.Fatalf("inner rolled back, outer committed: %d rows, want 1", n)
	}

	// A caller's own transaction, at REPEATABLE READ, adopted with its
	// options: racefree neither commits nor rolls it back.
	ptx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	must(t, err)
	defer ptx.Rollback(ctx)
	rtx := pgxrf.WrapTx(db, ptx, &pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if iso, known := rtx.Isolation(); !known || iso != sql.LevelRepeatableRead {
		t.Fatalf("wrapped isolation %v known=%v", iso, known)
	}
	if _, created, err := racefree.GetOrCreate[user](ctx, rtx, table, racefree.Values{"email": "mine@x"}, nil, racefree.Options{}); err != nil || !created {
		t.Fatalf("in own tx: created=%v err=%v", created, err)
	}
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table+" WHERE email = 'mine@x'"); n != 0 {
		t.Fatal("the caller's transaction was committed by racefree")
	}
	must(t, ptx.Commit(ctx))
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table+" WHERE email = 'mine@x'"); n != 1 {
		t.Fatal("row missing after the caller's commit")
	}
}

func TestRunInTx_BadInput(t *testing.T) {
	ctx := context.Background()
	noop := func(context.Context, pgx.Tx) error { return nil }
	if err := pgxrf.RunInTx(ctx, nil, racefree.TxOptions{}, noop); err == nil || !strings.Contains(err.Error(), "nil executor") {
		t.Errorf("nil executor: %v", err)
	}
	if err := pgxrf.RunInTx(ctx, (*racefree.DB)(nil), racefree.TxOptions{}, noop); err == nil {
		t.Error("nil *DB: no error")
	}
	if err := pgxrf.RunInTx(ctx, nil, racefree.TxOptions{}, nil); err == nil || !strings.Contains(err.Error(), "nil function") {
		t.Errorf("nil function: %v", err)
	}
	if _, err := pgxrf.New(ctx, nil); err == nil {
		t.Error("New(nil): no error")
	}
	if _, err := pgxrf.NewConn(ctx, nil); err == nil {
		t.Error("NewConn(nil): no error")
	}
	if _, _, err := racefree.GetOrCreate[user](ctx, pgxrf.WrapTx(nil, nil, nil), "t", racefree.Values{"email": "x"}, nil, racefree.Options{}); err == nil {
		t.Error("WrapTx(nil, nil): verbs ran")
	}
	// A database/sql DB is not pgx's: refused before anything begins.
	sqlDB := testdb.Open(t, "sqlite:"+t.TempDir()+"/x.db")
	if err := pgxrf.RunInTx(ctx, sqlDB, racefree.TxOptions{}, noop); err == nil || !strings.Contains(err.Error(), "not over pgx") {
		t.Errorf("database/sql DB: %v", err)
	}
}
