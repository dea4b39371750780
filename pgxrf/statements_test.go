package pgxrf_test

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// statementLog records the first word of every statement a pool sends.
type statementLog struct {
	mu    sync.Mutex
	verbs []string
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	verb, _, _ := strings.Cut(strings.TrimSpace(data.SQL), " ")
	l.mu.Lock()
	l.verbs = append(l.verbs, strings.ToUpper(verb))
	l.mu.Unlock()
	return ctx
}

func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *statementLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.verbs, " ")
	l.verbs = nil
	return s
}

// TestRunInTx_MissStatements counts, on the wire, the statements of a
// get-or-create that creates its row inside a transaction RunInTx began at
// REPEATABLE READ: five, where the hand-written sequence (SAVEPOINT around
// the INSERT, then RELEASE) sends six — the transaction's first savepoint
// is left for COMMIT to release. A second miss in the same transaction
// releases its own.
func TestRunInTx_MissStatements(t *testing.T) {
	e := pg(t)
	check := e.Open(t)
	var log statementLog
	db := mustDB(t, mustPool(t, e.DSN(t), 2, &log))
	ctx := context.Background()
	table := testdb.CreateTable(t, check, "pgxrf_stmts", usersDDL)
	getOrCreate := func(ctx context.Context, tx *racefree.Tx, email string) error {
		_, created, err := racefree.GetOrCreate[user](ctx, tx, table, racefree.Values{"email": email}, racefree.Values{"name": "n"}, racefree.Options{})
		if err == nil && !created {
			t.Errorf("%s: not created", email)
		}
		return err
	}
	// The first call reads the catalog: not part of what is counted.
	must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return getOrCreate(ctx, tx, "warm@x")
	}))
	log.take()

	rr := racefree.TxOptions{Isolation: sql.LevelRepeatableRead}
	must(t, racefree.RunInTx(ctx, db, rr, func(ctx context.Context, tx *racefree.Tx) error {
		return getOrCreate(ctx, tx, "a@x")
	}))
	if got, want := log.take(), "BEGIN SELECT SAVEPOINT INSERT COMMIT"; got != want {
		t.Errorf("one miss: %s, want %s", got, want)
	}
	must(t, racefree.RunInTx(ctx, db, rr, func(ctx context.Context, tx *racefree.Tx) error {
		if err := getOrCreate(ctx, tx, "b@x"); err != nil {
			return err
		}
		return getOrCreate(ctx, tx, "c@x")
	}))
	if got, want := log.take(), "BEGIN SELECT SAVEPOINT INSERT SELECT SAVEPOINT INSERT RELEASE COMMIT"; got != want {
		t.Errorf("two misses: %s, want %s", got, want)
	}
	if n := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+table); n != 4 {
		t.Fatalf("rows = %d, want 4", n)
	}
}
