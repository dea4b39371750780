package dialecttest

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// isTiDB reports whether d was detected on TiDB, which speaks the MySQL
// protocol with a transaction model of its own: snapshot isolation with
// no SERIALIZABLE, pessimistic row locks by default, optimistic write
// conflicts (9007) at COMMIT on request.
func isTiDB(d dialect.Dialect) bool { return strings.HasPrefix(d.Server(), "TiDB") }

// testTiDBFeatures checks on the server the capabilities the dialect
// leaves out for TiDB: each would be accepted by a MySQL server and each
// fails or silently does nothing on TiDB.
func testTiDBFeatures(t *testing.T, e testdb.Engine, d dialect.Dialect) {
	f := d.Features()
	if f.Has(dialect.ForShare) || f.Has(dialect.SkipLocked) || f.Has(dialect.TableLocks) || !f.Has(dialect.NoWait) {
		t.Errorf("%s: want NOWAIT and no FOR SHARE, SKIP LOCKED or table locks; features %b", d.Server(), f)
	}
	db := e.Open(t)
	tbl := counterTable(t, db, 1, 2)
	ctx := context.Background()

	holder, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "SELECT id FROM "+tbl+" WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	other, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, "SELECT id FROM "+tbl+" LOCK IN SHARE MODE"); err == nil {
		t.Errorf("%s: LOCK IN SHARE MODE succeeded: the dialect should offer ForShare", d.Server())
	}
	var ids []int
	rows, err := other.QueryContext(ctx, "SELECT id FROM "+tbl+" ORDER BY id FOR UPDATE SKIP LOCKED")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ids) == 1 && ids[0] == 2 {
		t.Errorf("%s: SKIP LOCKED skipped the locked row: the dialect should offer SkipLocked", d.Server())
	}
	t.Logf("%s: SKIP LOCKED returned rows %v while row 1 was locked", d.Server(), ids)
}

// testTiDBRefusesSerializable checks that asking TiDB for SERIALIZABLE
// fails, before the body runs, rather than running at a weaker level.
func testTiDBRefusesSerializable(t *testing.T, db *racefree.DB) {
	ran := false
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{Isolation: sql.LevelSerializable}, func(context.Context, *racefree.Tx) error {
		ran = true
		return nil
	})
	if err == nil || ran {
		t.Fatalf("%s: SERIALIZABLE transaction ran (err %v): TiDB should refuse it", db.Dialect().Server(), err)
	}
	t.Logf("%s refuses SERIALIZABLE: %v", db.Dialect().Server(), err)
}

// testRetryWriteConflict forces TiDB's optimistic write conflict: two
// transactions in optimistic mode read a counter, wait for each other,
// and both write read+1. Neither waits for a lock; the second COMMIT fails
// with 9007, which must be classified as a serialization failure and
// retried, so the counter ends at 2.
func testRetryWriteConflict(t *testing.T, e testdb.Engine) {
	probe := e.Open(t)
	if !isTiDB(probe.Dialect()) {
		t.Skip("optimistic write conflicts at COMMIT are TiDB's")
	}
	dsn := e.DSN(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	// The driver runs SET tidb_txn_mode = 'optimistic' on each connection.
	db := testdb.Open(t, dsn+sep+"tidb_txn_mode=%27optimistic%27")
	if d := db.Dialect(); !d.Features().Has(dialect.ClientRetries) || !strings.Contains(d.Server(), "optimistic") {
		t.Fatalf("%s: optimistic mode not detected (features %b)", d.Server(), d.Features())
	}
	tbl := counterTable(t, db, 1)
	log := &retryLog{db: db}
	b := newBarrier(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			errs[i] = racefree.RunInTx(context.Background(), db, racefree.TxOptions{OnRetry: log.onRetry}, func(ctx context.Context, tx *racefree.Tx) error {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = "+itoa(n+1)+" WHERE id = 1"); err != nil {
					return err
				}
				if first {
					first = false
					b.wait(t) // both have written; neither has committed
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a write conflict reached the caller: %v", err)
		}
	}
	if got := log.count(dialect.ClassSerialization); got < 1 {
		t.Fatalf("no write conflict was retried (retried classes %v): the test did not force one", log.classes)
	}
	if n := testdb.QueryInt(t, db, "SELECT n FROM "+tbl+" WHERE id = 1"); n != 2 {
		t.Fatalf("counter = %d, want 2: an optimistic write was lost", n)
	}
}
