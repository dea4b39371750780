package racefree_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/internal/testdb"
)

// On PostgreSQL over database/sql, hits and INSERT … RETURNING run
// natively on pgx's connection (dialect.RowReader). These tests hold that
// to database/sql's own answer: the same values in the same fields, the
// same errors, and the row replayed through database/sql wherever only it
// can convert a value.

// nativeReads counts the outcomes of native reads while a test runs.
type nativeReads struct {
	mu       sync.Mutex
	native   int // read natively
	fallback int // left to database/sql after the read
	foreign  int // the connection was not pgx's
}

func countNativeReads(t *testing.T) *nativeReads {
	n := &nativeReads{}
	t.Cleanup(racefree.SetNativeReadHook(func(err error) {
		n.mu.Lock()
		defer n.mu.Unlock()
		switch {
		case errors.Is(err, dialect.ErrForeignConn):
			n.foreign++
		case errors.Is(err, dialect.ErrNotReadNatively), errors.Is(err, racefree.ErrPinnedNotSent):
			n.fallback++
		case err == nil || errors.Is(err, sql.ErrNoRows):
			n.native++
		}
	}))
	return n
}

func (n *nativeReads) get() (native, fallback, foreign int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.native, n.fallback, n.foreign
}

// typedRow has a field of a common Go type for each column type of
// nativeTypesDDL, several needing a conversion (numeric into float64,
// smallint into int, a uuid into a named string type).
type typedRow struct {
	ID       int64           `db:"id"`
	Small    int             `db:"small"`
	Int      int32           `db:"i"`
	Big      uint64          `db:"big"`
	Price    float64         `db:"price"`
	Real     float32         `db:"r"`
	Double   float64         `db:"d"`
	OK       bool            `db:"ok"`
	Name     string          `db:"name"`
	Nick     *string         `db:"nick"`
	Blob     []byte          `db:"blob"`
	UUID     userID          `db:"uuid"`
	JSON     json.RawMessage `db:"js"`
	JSONB    []byte          `db:"jsb"`
	Day      time.Time       `db:"day"`
	At       time.Time       `db:"at"`
	AtTZ     time.Time       `db:"attz"`
	Span     string          `db:"span"`
	Tags     string          `db:"tags"`
	Addr     string          `db:"addr"`
	NullText sql.NullString  `db:"nt"`
	NullInt  sql.Null[int]   `db:"ni"`
	NullTime *time.Time      `db:"ntime"`
}

type userID string

const nativeTypesDDL = `id BIGINT PRIMARY KEY, small SMALLINT, i INTEGER, big BIGINT, price NUMERIC(12,2),
	r REAL, d DOUBLE PRECISION, ok BOOLEAN, name TEXT, nick VARCHAR(20), blob BYTEA, uuid UUID, js JSON,
	jsb JSONB, day DATE, at TIMESTAMP, attz TIMESTAMPTZ, span INTERVAL, tags TEXT[], addr INET,
	nt TEXT, ni INTEGER, ntime TIMESTAMPTZ`

const nativeTypesRow = `1, -7, 2147483647, 9007199254740993, 1234.50, 1.5, 2.25, true, 'héllo', 'nick',
	'\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1, "a": [true, null]}',
	'{"b": 1, "a": [true, null]}', '2026-12-02', '2026-12-02 12:34:56.789', '2026-12-02 12:34:56.789+02',
	'1 day 02:03:04', '{"a b",c}', '192.168.0.1/24', NULL, NULL, NULL`

func TestNativeRead_SameAsDatabaseSQL(t *testing.T) {
	dsn := pgEngine(t).DSN(t)
	// Each of pgx's query modes: some take the result formats racefree
	// asks for, others (simple protocol, exec) get every column as text.
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			sep := "?"
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
			nativeSameAsDatabaseSQL(t, dsn+sep+"default_query_exec_mode="+mode)
		})
	}
}

func nativeSameAsDatabaseSQL(t *testing.T, dsn string) {
	db := testdb.Open(t, dsn)
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_types", nativeTypesDDL)
	testdb.Exec(t, db, "INSERT INTO "+table+" VALUES ("+nativeTypesRow+")")
	testdb.Exec(t, db, "INSERT INTO "+table+" (id, small, i, big, price, r, d, ok, name, blob, uuid, js, jsb, day, at, attz, span, tags, addr, nt, ni, ntime) "+
		"VALUES (2, 0, 0, 0, 0, 0, 0, false, '', '', '00000000-0000-0000-0000-000000000000', 'null', 'null', '1970-01-01', '1970-01-01', '1970-01-01Z', '0', '{}', '::1', 'x', 3, '2026-12-02Z')")
	reads := countNativeReads(t)

	for _, id := range []int64{1, 2} {
		want, _, err := inTx(ctx, db, func(ctx context.Context, tx *racefree.Tx) (typedRow, bool, error) {
			return racefree.GetOrCreate[typedRow](ctx, tx, table, racefree.Values{"id": id}, nil, racefree.Options{})
		})
		must(t, err)
		got, created, err := racefree.GetOrCreate[typedRow](ctx, db, table, racefree.Values{"id": id}, nil, racefree.Options{})
		must(t, err)
		if created {
			t.Fatalf("row %d: created", id)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("row %d:\nnative:       %+v\ndatabase/sql: %+v", id, got, want)
		}

		wantV, _, err := inTx(ctx, db, func(ctx context.Context, tx *racefree.Tx) (racefree.Values, bool, error) {
			return racefree.GetOrCreate[racefree.Values](ctx, tx, table, racefree.Values{"id": id}, nil, racefree.Options{})
		})
		must(t, err)
		gotV, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"id": id}, nil, racefree.Options{})
		must(t, err)
		for col, w := range wantV {
			if g := gotV[col]; !reflect.DeepEqual(g, w) {
				t.Errorf("row %d, Values[%q]: native %T %#v, database/sql %T %#v", id, col, g, g, w, w)
			}
		}
	}
	if native, fallback, foreign := reads.get(); native != 4 || fallback != 0 || foreign != 0 {
		t.Errorf("native reads %d, fallbacks %d, foreign %d; want 4, 0, 0", native, fallback, foreign)
	}
}

// A destination only database/sql converts into (an integer column into
// []byte, which it formats as text) gets database/sql's value: the row
// read natively is replayed through database/sql, not read again.
func TestNativeRead_ReplaysWhereOnlyDatabaseSQLConverts(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_fallback", "id BIGINT PRIMARY KEY, n BIGINT")
	testdb.Exec(t, db, "INSERT INTO "+table+" VALUES (1, 42)")
	type bytesRow struct {
		ID int64  `db:"id"`
		N  []byte `db:"n"`
	}
	reads := countNativeReads(t)
	for range 3 {
		got, _, err := racefree.GetOrCreate[bytesRow](ctx, db, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
		must(t, err)
		if string(got.N) != "42" {
			t.Fatalf("n = %q, want \"42\" as database/sql gives it", got.N)
		}
	}
	if native, fallback, _ := reads.get(); native != 3 || fallback != 0 {
		t.Errorf("native reads %d, fallbacks %d; want 3 and 0", native, fallback)
	}
}

// A miss's INSERT … RETURNING runs natively too, and gives the row
// database/sql gives; a value database/sql refuses is refused after the
// row was inserted, as database/sql refuses it, and the row is there once.
func TestNativeRead_InsertReturning(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_insert", `id BIGINT PRIMARY KEY, small SMALLINT NOT NULL DEFAULT 7,
		price NUMERIC(12,2) NOT NULL DEFAULT 12.50, name TEXT NOT NULL DEFAULT 'n', blob BYTEA NOT NULL DEFAULT '\x00ff',
		at TIMESTAMPTZ NOT NULL DEFAULT '2026-12-02 03:04:05+02', n BIGINT`)
	type insertRow struct {
		ID    int64     `db:"id"`
		Small int       `db:"small"`
		Price float64   `db:"price"`
		Name  string    `db:"name"`
		Blob  []byte    `db:"blob"`
		At    time.Time `db:"at"`
		N     *int64    `db:"n"`
	}
	want, created, err := inTx(ctx, db, func(ctx context.Context, tx *racefree.Tx) (insertRow, bool, error) {
		return racefree.CreateOrGet[insertRow](ctx, tx, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
	})
	must(t, err)
	if !created {
		t.Fatal("row 1 not created")
	}
	reads := countNativeReads(t)
	got, created, err := racefree.CreateOrGet[insertRow](ctx, db, table, racefree.Values{"id": int64(2)}, nil, racefree.Options{})
	must(t, err)
	if !created {
		t.Fatal("row 2 not created")
	}
	want.ID = 2
	if !reflect.DeepEqual(got, want) {
		t.Errorf("native:       %+v\ndatabase/sql: %+v", got, want)
	}
	if native, _, _ := reads.get(); native != 1 {
		t.Errorf("%d native statements, want the INSERT's 1", native)
	}

	type strictRow struct {
		ID int64 `db:"id"`
		N  int64 `db:"n"` // NULL in the new row: database/sql refuses it
	}
	_, _, err = racefree.CreateOrGet[strictRow](ctx, db, table, racefree.Values{"id": int64(3)}, nil, racefree.Options{NoCoalesce: true})
	if err == nil || !strings.Contains(err.Error(), `sql: Scan error on column index 1, name "n": converting NULL to int64 is unsupported`) {
		t.Fatalf("err = %v, want database/sql's conversion error", err)
	}
	var rows int
	must(t, db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM "+table+" WHERE id = 3").Scan(&rows))
	if rows != 1 {
		t.Errorf("%d rows with id 3, want the one the INSERT made (it ran once)", rows)
	}
}

// A value database/sql refuses (NULL into an int) fails with
// database/sql's own error.
func TestNativeRead_ErrorsAreDatabaseSQLs(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_errors", "id BIGINT PRIMARY KEY, n BIGINT")
	testdb.Exec(t, db, "INSERT INTO "+table+" VALUES (1, NULL)")
	type intRow struct {
		ID int64 `db:"id"`
		N  int64 `db:"n"`
	}
	_, _, err := racefree.GetOrCreate[intRow](ctx, db, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
	if err == nil || !strings.Contains(err.Error(), `sql: Scan error on column index 1, name "n": converting NULL to int64 is unsupported`) {
		t.Fatalf("err = %v, want database/sql's conversion error", err)
	}

	type scanRow struct {
		ID int64       `db:"id"`
		N  refuseScans `db:"n"`
	}
	_, _, err = racefree.GetOrCreate[scanRow](ctx, db, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
	if !errors.Is(err, errRefusedScan) || !strings.Contains(err.Error(), `sql: Scan error on column index 1, name "n"`) {
		t.Fatalf("err = %v, want the Scan method's error wrapped as database/sql wraps it", err)
	}
}

var errRefusedScan = errors.New("refused")

type refuseScans struct{}

func (*refuseScans) Scan(any) error { return errRefusedScan }

// A pool whose connections are not pgx's own (a driver wrapped, as
// tracing libraries do) is read through database/sql after the first try.
func TestNativeRead_WrappedDriverUsesDatabaseSQL(t *testing.T) {
	e := pgEngine(t)
	cfg, err := pgx.ParseConfig(e.DSN(t))
	must(t, err)
	sqlDB := sql.OpenDB(wrappedConnector{stdlib.GetConnector(*cfg)})
	t.Cleanup(func() { sqlDB.Close() })
	ctx := context.Background()
	db, err := racefree.New(ctx, sqlDB, pgdialect.New())
	must(t, err)
	table := testdb.CreateTable(t, db, "native_wrapped", "id BIGINT PRIMARY KEY, name TEXT")
	testdb.Exec(t, db, "INSERT INTO "+table+" VALUES (1, 'a')")
	reads := countNativeReads(t)
	for range 3 {
		got, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
		must(t, err)
		if got["name"] != "a" {
			t.Fatalf("name = %#v", got["name"])
		}
	}
	if native, _, foreign := reads.get(); native != 0 || foreign != 1 {
		t.Errorf("native reads %d, foreign %d; want 0 and 1", native, foreign)
	}
}

type wrappedConnector struct{ driver.Connector }

func (w wrappedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := w.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return wrappedConn{c.(*stdlib.Conn)}, nil
}

type wrappedConn struct{ *stdlib.Conn }

// pgEngine is PostgreSQL, or skips the test as testdb does.
func pgEngine(t *testing.T) testdb.Engine {
	t.Helper()
	e, _ := testdb.Get("postgres")
	e.Require(t)
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// inTx runs f in a transaction the test begins itself and hands to
// racefree (WrapTx): it lends racefree no connection, so its reads go
// through database/sql — the reference native reads are held to.
func inTx[T any](ctx context.Context, db *racefree.DB, f func(context.Context, *racefree.Tx) (T, bool, error)) (row T, created bool, err error) {
	stx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return row, false, err
	}
	defer stx.Rollback()
	row, created, err = f(ctx, db.WrapTx(stx, nil))
	if err != nil {
		return row, created, err
	}
	return row, created, stx.Commit()
}

// A native read cut off by its context returns the context's error, and
// the pool stays usable: the connection pgx closed on the cancel is not
// handed out again.
func TestNativeRead_CanceledWhileWaiting(t *testing.T) {
	db := testdb.Open(t, pgEngine(t).DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "native_cancel", "id BIGINT PRIMARY KEY, name TEXT")
	testdb.Exec(t, db, "INSERT INTO "+table+" VALUES (1, 'a')")
	db.SQL().SetMaxOpenConns(2)
	reads := countNativeReads(t)

	// Another session holds the table locked: the hit waits on it.
	locker := lockTableElsewhere(t, db, table)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, _, err := racefree.GetOrCreate[racefree.Values](short, db, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{NoCoalesce: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	must(t, locker.Rollback())

	for range 10 {
		got, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"id": int64(1)}, nil, racefree.Options{})
		must(t, err)
		if got["name"] != "a" {
			t.Fatalf("name = %#v", got["name"])
		}
	}
	if native, _, _ := reads.get(); native < 10 {
		t.Errorf("%d reads went natively, want the 10 after the cancel", native)
	}
}

// lockTableElsewhere locks table in a transaction of another session, so
// that a read of it waits until the returned transaction ends.
func lockTableElsewhere(t *testing.T, db *racefree.DB, table string) *sql.Tx {
	t.Helper()
	locker, err := db.SQL().BeginTx(context.Background(), nil)
	must(t, err)
	_, err = locker.ExecContext(context.Background(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE")
	must(t, err)
	return locker
}
