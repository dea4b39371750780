package mysqldialect_test

import (
	"context"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/mysqldialect"
	"github.com/racefree/racefree/internal/testdb"
)

// TestTiDB_UnclaimedFeatures checks, on TiDB, why the dialect leaves out
// features a MySQL server has: each is accepted by MySQL, and fails or
// silently does nothing on TiDB. The contract suite proves what the
// dialect claims; this proves that leaving these out is right.
func TestTiDB_UnclaimedFeatures(t *testing.T) {
	e, _ := testdb.Get("mysql")
	db := e.Open(t)
	d := db.Dialect().(*mysqldialect.Dialect)
	if d.Flavor() != mysqldialect.TiDB {
		t.Skipf("%s is not TiDB", d.Server())
	}
	f := d.Features()
	if f.Has(dialect.ForShare) || f.Has(dialect.SkipLocked) || f.Has(dialect.TableLocks) || !f.Has(dialect.NoWait) {
		t.Errorf("%s: want NOWAIT and no FOR SHARE, SKIP LOCKED or table locks; features %b", d.Server(), f)
	}
	tbl := testdb.CreateTable(t, db, "tidbf", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES (1, 0), (2, 0)")
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
	rows, err := other.QueryContext(ctx, "SELECT id FROM "+tbl+" ORDER BY id FOR UPDATE SKIP LOCKED")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int
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
