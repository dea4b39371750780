package racefree_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// withoutTransferer is a dialect that hides its dialect.Transferer, so that
// Transfer runs its fallback transaction: the path of engines without one.
// It keeps what the fallback needs: the catalog reader, and the row locks
// (withoutTransfererSW: the write lock of a single-writer engine).
type withoutTransferer struct {
	dialect.Dialect
	dialect.SchemaReader
	dialect.RowLocker
}

type withoutTransfererSW struct {
	dialect.Dialect
	dialect.SchemaReader
	dialect.WriteLocker
}

// hideTransferer wraps d so that it has no Transferer.
func hideTransferer(d dialect.Dialect) dialect.Dialect {
	if wl, ok := d.(dialect.WriteLocker); ok && d.Features().Has(dialect.SingleWriter) {
		return withoutTransfererSW{Dialect: d, SchemaReader: d.(dialect.SchemaReader), WriteLocker: wl}
	}
	return withoutTransferer{Dialect: d, SchemaReader: d.(dialect.SchemaReader), RowLocker: d.(dialect.RowLocker)}
}

// transferPaths opens db twice: as it is (the dialect's statement) and
// with the fallback transaction, for tests that prove both.
func transferPaths(t *testing.T, db *racefree.DB) map[string]*racefree.DB {
	t.Helper()
	fb, err := fallbackDB(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*racefree.DB{"statement": db, "fallback": fb}
}

// fallbackDB is db's pool with a dialect that has no Transferer.
func fallbackDB(ctx context.Context, db *racefree.DB) (*racefree.DB, error) {
	return racefree.New(ctx, db.SQL(), hideTransferer(db.Dialect()))
}

// mustBalances creates a table of n rows with keys 1..n and the given
// balance each, and returns its Balances.
func mustBalances(t testing.TB, db *racefree.DB, n int, balance int64) target {
	t.Helper()
	return mustBalancesDDL(t, db, n, balance, "id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL")
}

// mustBalancesDDL is mustBalances with the table's columns and
// constraints in ddl.
func mustBalancesDDL(t testing.TB, db *racefree.DB, n int, balance int64, ddl string) target {
	t.Helper()
	table := testdb.CreateTable(t, db, "rf_transfer", ddl)
	for i := 1; i <= n; i++ {
		testdb.Exec(t, db, "INSERT INTO "+table+" (id, balance) VALUES ("+strconv.Itoa(i)+", "+strconv.FormatInt(balance, 10)+")")
	}
	return target{Table: table, Column: "balance"}
}

// isTiDB reports whether db is a TiDB server, where Transfer is racefree's
// fallback transaction (see mysqldialect.Dialect.Transfer) and CHECK
// constraints are not enforced by default.
func isTiDB(db *racefree.DB) bool { return strings.Contains(db.Dialect().Server(), "TiDB") }

// target names where the tests move amounts: a table's value column and
// its key column ("" for "id").
type target struct{ Table, Key, Column string }

// transfer is racefree.Transfer on b.
func transfer(ctx context.Context, ex racefree.Executor, b target, from, to, amount any, opts racefree.TransferOptions) error {
	if b.Key != "" {
		opts.KeyColumn = b.Key
	}
	return racefree.Transfer(ctx, ex, b.Table, b.Column, from, to, amount, opts)
}

// balances reads every balance, by key.
func balances(t testing.TB, db *racefree.DB, b target) map[int64]int64 {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), "SELECT id, balance FROM "+b.Table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int64]int64{}
	for rows.Next() {
		var k, v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustBalancesEqual(t testing.TB, got map[int64]int64, want map[int64]int64) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("balances %v, want %v", got, want)
		}
	}
}

func TestTransfer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		base := e.Open(t)
		for path, db := range transferPaths(t, base) {
			t.Run(path, func(t *testing.T) {
				ctx := context.Background()
				b := mustBalances(t, db, 3, 100)
				// Both key orders, so that the row changed first is once
				// the debited one and once the credited one: 60 is more
				// than half, so a statement that checked the floor again
				// after changing the first row would change only one.
				if err := transfer(ctx, db, b, 1, 2, 60, racefree.TransferOptions{}); err != nil {
					t.Fatal(err)
				}
				mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 40, 2: 160, 3: 100})
				if err := transfer(ctx, db, b, int64(2), int64(1), int32(100), racefree.TransferOptions{}); err != nil {
					t.Fatal(err)
				}
				mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 140, 2: 60, 3: 100})

				// Down to the floor exactly, and not one unit below it.
				if err := transfer(ctx, db, b, 3, 1, "100", racefree.TransferOptions{}); err != nil {
					t.Fatal(err)
				}
				err := transfer(ctx, db, b, 3, 2, 1, racefree.TransferOptions{})
				var te *racefree.TransferError
				if !errors.Is(err, racefree.ErrBelowFloor) || errors.Is(err, racefree.ErrNoRow) || !errors.As(err, &te) || len(te.Missing) != 0 {
					t.Fatalf("below the floor: got %v, want ErrBelowFloor", err)
				}
				mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 240, 2: 60, 3: 0})

				// A floor: 60 - 50 < 20. A negative floor is an overdraft limit.
				if err := transfer(ctx, db, b, 2, 1, 50, racefree.TransferOptions{Floor: 20}); !errors.Is(err, racefree.ErrBelowFloor) {
					t.Fatalf("floor 20: got %v, want ErrBelowFloor", err)
				}
				if err := transfer(ctx, db, b, 3, 1, 30, racefree.TransferOptions{Floor: "-30"}); err != nil {
					t.Fatalf("overdraft within the limit: %v", err)
				}
				if err := transfer(ctx, db, b, 3, 1, 1, racefree.TransferOptions{Floor: -30}); !errors.Is(err, racefree.ErrBelowFloor) {
					t.Fatalf("overdraft past the limit: got %v, want ErrBelowFloor", err)
				}
				mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 270, 2: 60, 3: -30})
			})
		}
	})
}

func TestTransfer_MissingRow(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		base := e.Open(t)
		for path, db := range transferPaths(t, base) {
			t.Run(path, func(t *testing.T) {
				ctx := context.Background()
				b := mustBalances(t, db, 2, 100)
				for _, tc := range []struct {
					name     string
					from, to int64
					missing  []int64
				}{
					{name: "From", from: 9, to: 1, missing: []int64{9}},
					{name: "To", from: 1, to: 9, missing: []int64{9}},
					{name: "ToBeforeFrom", from: 2, to: 0, missing: []int64{0}},
					{name: "Both", from: 8, to: 9, missing: []int64{8, 9}},
				} {
					t.Run(tc.name, func(t *testing.T) {
						err := transfer(ctx, db, b, tc.from, tc.to, 10, racefree.TransferOptions{})
						var te *racefree.TransferError
						if !errors.Is(err, racefree.ErrNoRow) || errors.Is(err, racefree.ErrBelowFloor) || !errors.As(err, &te) {
							t.Fatalf("got %v, want ErrNoRow", err)
						}
						if len(te.Missing) != len(tc.missing) {
							t.Fatalf("missing %v, want %v", te.Missing, tc.missing)
						}
						for i, k := range tc.missing {
							if te.Missing[i] != k {
								t.Fatalf("missing %v, want %v", te.Missing, tc.missing)
							}
						}
						mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 100, 2: 100})
					})
				}
			})
		}
	})
}

func TestTransfer_InTx(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		base := e.Open(t)
		for path, db := range transferPaths(t, base) {
			t.Run(path, func(t *testing.T) {
				ctx := context.Background()
				// A CHECK on the credited side: a credit past 150 fails
				// the statement.
				table := testdb.CreateTable(t, db, "rf_transfer_tx", "id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance <= 150)")
				testdb.Exec(t, db, "INSERT INTO "+table+" (id, balance) VALUES (1, 100), (2, 100)")
				b := target{Table: table, Column: "balance"}

				// Rolled back with the caller's transaction.
				errRollback := errors.New("roll back")
				err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
					if err := transfer(ctx, tx, b, 1, 2, 30, racefree.TransferOptions{}); err != nil {
						return err
					}
					return errRollback
				})
				if !errors.Is(err, errRollback) {
					t.Fatal(err)
				}
				mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 100, 2: 100})

				err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
					if err := transfer(ctx, tx, b, 1, 2, 30, racefree.TransferOptions{}); err != nil {
						return err
					}
					// Declined, and the transaction goes on.
					if err := transfer(ctx, tx, b, 1, 2, 71, racefree.TransferOptions{}); !errors.Is(err, racefree.ErrBelowFloor) {
						t.Errorf("in tx, below the floor: got %v", err)
					}
					return transfer(ctx, tx, b, 2, 1, 5, racefree.TransferOptions{})
				})
				if err != nil {
					t.Fatal(err)
				}
				mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 75, 2: 125})

				// The CHECK fails the credit: an error of the statement,
				// returned as itself (not retryable), and nothing of the
				// failed transfer stays. On PostgreSQL it aborts the
				// caller's transaction, as any failed statement does.
				if isTiDB(db) {
					return // TiDB ignores CHECK unless tidb_enable_check_constraint is on
				}
				err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
					return transfer(ctx, tx, b, 1, 2, 40, racefree.TransferOptions{})
				})
				if !errors.Is(err, racefree.ErrCheckViolation) {
					t.Errorf("in tx, credit past the CHECK: got %v, want ErrCheckViolation", err)
				}
				mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 75, 2: 125})
			})
		}
	})
}

func TestTransfer_Conn(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		ctx := context.Background()
		b := mustBalances(t, db, 2, 100)
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := transfer(ctx, c, b, 2, 1, 25, racefree.TransferOptions{}); err != nil {
			t.Fatal(err)
		}
		mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 125, 2: 75})
	})
}

func TestTransfer_Decimal(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		base := e.Open(t)
		for path, db := range transferPaths(t, base) {
			t.Run(path, func(t *testing.T) {
				ctx := context.Background()
				table := testdb.CreateTable(t, db, "rf_transfer_dec", "id BIGINT NOT NULL PRIMARY KEY, balance DECIMAL(18,2) NOT NULL")
				testdb.Exec(t, db, "INSERT INTO "+table+" (id, balance) VALUES (1, 100.25), (2, 0)")
				b := target{Table: table, Column: "balance"}
				if err := transfer(ctx, db, b, 1, 2, "12.50", racefree.TransferOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := transfer(ctx, db, b, 1, 2, "87.75", racefree.TransferOptions{Floor: "0.01"}); !errors.Is(err, racefree.ErrBelowFloor) {
					t.Fatalf("87.75 of 87.75 above a floor of 0.01: got %v, want ErrBelowFloor", err)
				}
				if err := transfer(ctx, db, b, 1, 2, "87.75", racefree.TransferOptions{Floor: "0.00"}); err != nil {
					t.Fatal(err)
				}
				// In hundredths, exact on every engine.
				integer := map[string]string{"postgres": "BIGINT", "mysql": "SIGNED", "sqlite": "INTEGER"}[e.Name]
				got := testdb.QueryInt(t, db, "SELECT CAST(ROUND(balance * 100) AS "+integer+") FROM "+table+" WHERE id = 2")
				if got != 10025 {
					t.Fatalf("balance of 2 = %d hundredths, want 10025", got)
				}
				err := transfer(ctx, db, b, 2, 1, "1.005", racefree.TransferOptions{})
				if !errors.Is(err, racefree.ErrInvalidInput) || !strings.Contains(err.Error(), "rounded") {
					t.Fatalf("3 decimal places into DECIMAL(18,2): got %v, want ErrInvalidInput", err)
				}
			})
		}
	})
}

func TestTransfer_BadInput(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		ctx := context.Background()
		b := mustBalances(t, db, 2, 100)
		plain := testdb.CreateTable(t, db, "rf_transfer_bad", "id BIGINT NOT NULL, balance BIGINT, note {{text}} NOT NULL")
		for _, tc := range []struct {
			name             string
			b                target
			from, to, amount any
			floor            any
			want             []string // every one must be named
		}{
			{name: "ZeroAmount", b: b, from: 1, to: 2, amount: 0, want: []string{"greater than zero"}},
			{name: "NegativeAmount", b: b, from: 1, to: 2, amount: "-5", want: []string{"greater than zero"}},
			{name: "FloatAmount", b: b, from: 1, to: 2, amount: 1.5, want: []string{"not exact"}},
			{name: "NotADecimal", b: b, from: 1, to: 2, amount: "1e3", want: []string{"not a decimal"}},
			{name: "FractionIntoIntegers", b: b, from: 1, to: 2, amount: "0.5", want: []string{"whole numbers"}},
			{name: "SameKey", b: b, from: 1, to: int64(1), amount: 1, want: []string{"same key"}},
			{name: "NilKeys", b: b, from: nil, to: nil, amount: 1, want: []string{"nil from key", "nil to key"}},
			{name: "KeyOfWrongType", b: b, from: "one", to: 2, amount: 1, want: []string{"from key"}},
			{name: "UnknownTable", b: target{Table: "rf_no_such_table", Column: "balance"}, from: 1, to: 2, amount: 1, want: []string{"does not exist"}},
			{name: "InjectedTable", b: target{Table: b.Table + " --", Column: "balance"}, from: 1, to: 2, amount: 1, want: []string{"does not exist"}},
			{name: "UnknownColumn", b: target{Table: b.Table, Column: "nope"}, from: 1, to: 2, amount: 1, want: []string{`no column "nope"`}},
			{name: "NoColumn", b: target{Table: b.Table}, from: 1, to: 2, amount: 1, want: []string{"no value column"}},
			{name: "NotUnique", b: target{Table: plain, Column: "note"}, from: 1, to: 2, amount: 1, want: []string{"unique index", "not a number"}},
			{name: "Nullable", b: target{Table: plain, Column: "balance"}, from: 1, to: 2, amount: 1, want: []string{"unique index", "NULL"}},
			{name: "Everything", b: target{Table: plain, Column: "balance"}, from: 1, to: 1, amount: -1, floor: 0.5, want: []string{"unique index", "NULL", "same key", "amount -1", "floor 0.5"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := transfer(ctx, db, tc.b, tc.from, tc.to, tc.amount, racefree.TransferOptions{Floor: tc.floor})
				if !errors.Is(err, racefree.ErrInvalidInput) {
					t.Fatalf("want ErrInvalidInput, got %v", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
			})
		}
		mustBalancesEqual(t, balances(t, db, b), map[int64]int64{1: 100, 2: 100})
		if err := transfer(ctx, (*racefree.DB)(nil), b, 1, 2, 1, racefree.TransferOptions{}); err == nil {
			t.Fatal("nil executor: no error")
		}
	})
}

// TestTransfer_SameRowByCollation: two different keys that the key
// column's collation takes as equal name one row; the transfer is refused
// as bad input instead of moving the amount onto the row it came from.
func TestTransfer_SameRowByCollation(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		keyType := map[string]string{"mysql": "VARCHAR(20) COLLATE utf8mb4_general_ci", "sqlite": "TEXT COLLATE NOCASE"}[e.Name]
		if keyType == "" {
			t.Skip("PostgreSQL's default collations are case-sensitive")
		}
		base := e.Open(t)
		for path, db := range transferPaths(t, base) {
			t.Run(path, func(t *testing.T) {
				table := testdb.CreateTable(t, db, "rf_transfer_ci", "k "+keyType+" NOT NULL PRIMARY KEY, balance BIGINT NOT NULL")
				testdb.Exec(t, db, "INSERT INTO "+table+" (k, balance) VALUES ('a', 100)")
				err := transfer(context.Background(), db, target{Table: table, Key: "k", Column: "balance"}, "a", "A", 10, racefree.TransferOptions{})
				if !errors.Is(err, racefree.ErrInvalidInput) || !strings.Contains(err.Error(), "same row") {
					t.Fatalf("got %v, want ErrInvalidInput naming the same row", err)
				}
				if got := testdb.QueryInt(t, db, "SELECT balance FROM "+table); got != 100 {
					t.Fatalf("balance %d, want 100", got)
				}
			})
		}
	})
}

// TestTransfer_UnsignedColumn: MySQL's BIGINT UNSIGNED would turn
// value − amount < 0 into an out-of-range error; the check is written so
// that a declined transfer is declined.
func TestTransfer_UnsignedColumn(t *testing.T) {
	e, _ := testdb.Get("mysql")
	db := e.Open(t)
	table := testdb.CreateTable(t, db, "rf_transfer_u", "id BIGINT NOT NULL PRIMARY KEY, balance BIGINT UNSIGNED NOT NULL")
	testdb.Exec(t, db, "INSERT INTO "+table+" (id, balance) VALUES (1, 5), (2, 5)")
	b := target{Table: table, Column: "balance"}
	for _, from := range []int64{1, 2} {
		if err := transfer(context.Background(), db, b, from, 3-from, 10, racefree.TransferOptions{}); !errors.Is(err, racefree.ErrBelowFloor) {
			t.Fatalf("from %d: got %v, want ErrBelowFloor", from, err)
		}
	}
}

// TestTransfer_DecidesOnLatestValue starts a transfer while another
// transaction holds the debited row with a new balance, and commits that
// transaction while the transfer waits: the transfer must decide on the
// committed balance, not on the one it could see when it began — moving
// when the balance was raised enough, declining when it was lowered.
func TestTransfer_DecidesOnLatestValue(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		base := e.Open(t)
		for path, db := range transferPaths(t, base) {
			for _, tc := range []struct {
				name      string
				newSource int64
				want      error
			}{
				{name: "Raised", newSource: 200, want: nil},
				{name: "Lowered", newSource: 5, want: racefree.ErrBelowFloor},
			} {
				t.Run(path+"/"+tc.name, func(t *testing.T) {
					ctx := context.Background()
					b := mustBalances(t, db, 2, 100)
					tx, err := db.SQL().BeginTx(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Rollback()
					if _, err := tx.ExecContext(ctx, "UPDATE "+b.Table+" SET balance = "+strconv.FormatInt(tc.newSource, 10)+" WHERE id = 1"); err != nil {
						t.Fatal(err)
					}
					done := make(chan error, 1)
					go func() { done <- transfer(ctx, db, b, 1, 2, 150, racefree.TransferOptions{}) }()
					select {
					case err := <-done:
						t.Fatalf("the transfer did not wait for the row another transaction holds: %v", err)
					case <-time.After(300 * time.Millisecond):
					}
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
					if err := <-done; !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
						t.Fatalf("got %v, want %v", err, tc.want)
					}
					want := map[int64]int64{1: tc.newSource, 2: 100}
					if tc.want == nil {
						want = map[int64]int64{1: tc.newSource - 150, 2: 250}
					}
					mustBalancesEqual(t, balances(t, db, b), want)
				})
			}
		}
	})
}

// TestTransfer_LocksInKeyOrder shows the order a transfer takes its row
// locks in, whatever its direction: while another transaction holds one
// row, a transfer waiting for it holds the other row only if that row's
// key is lower. Two transfers of the same rows therefore never hold one
// row each while waiting for the other.
func TestTransfer_LocksInKeyOrder(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite has no row locks: its write lock is the one lock")
		}
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		nowait := map[string]string{"postgres": " FOR UPDATE NOWAIT", "mysql": " FOR UPDATE NOWAIT"}[e.Name]
		for _, tc := range []struct {
			name          string
			held, other   int64 // the row another transaction holds, and the transfer's other row
			wantOtherHeld bool
		}{
			// 2→1 waits for 2 holding 1; 1→2 waits for 1 before taking 2.
			{name: "WaitsForHigherHoldingLower", held: 2, other: 1, wantOtherHeld: true},
			{name: "WaitsForLowerHoldingNothing", held: 1, other: 2, wantOtherHeld: false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				b := mustBalances(t, db, 2, 100)
				holder, err := db.SQL().BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer holder.Rollback()
				if _, err := holder.ExecContext(ctx, "UPDATE "+b.Table+" SET balance = balance WHERE id = "+strconv.FormatInt(tc.held, 10)); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				// The debited row is the held one: the transfer must wait.
				go func() { done <- transfer(ctx, db, b, tc.held, tc.other, 10, racefree.TransferOptions{}) }()
				time.Sleep(300 * time.Millisecond)
				probe, err := db.SQL().BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				var id int64
				err = probe.QueryRowContext(ctx, "SELECT id FROM "+b.Table+" WHERE id = "+strconv.FormatInt(tc.other, 10)+nowait).Scan(&id)
				probe.Rollback()
				otherHeld := errors.Is(db.Classify(err), racefree.ErrLockNotAcquired)
				if err != nil && !otherHeld {
					t.Fatal(err)
				}
				if otherHeld != tc.wantOtherHeld && !(isTiDB(db) && !otherHeld) {
					// TiDB locks the keys of one statement together and
					// holds none of them while it waits for one: no
					// deadlock either.
					t.Errorf("while waiting for row %d, the transfer holds row %d: %v, want %v", tc.held, tc.other, otherHeld, tc.wantOtherHeld)
				}
				select {
				case err := <-done:
					t.Fatalf("the transfer did not wait for row %d: %v", tc.held, err)
				default:
				}
				if err := holder.Commit(); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// TestTransfer_Context: a context that ended before the call sends
// nothing; one that ends while the statement waits leaves its outcome
// unknown, which the error says.
func TestTransfer_Context(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		b := mustBalances(t, db, 2, 100)
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		err := transfer(ended, db, b, 1, 2, 10, racefree.TransferOptions{})
		if !errors.Is(err, racefree.ErrCanceled) || errors.Is(err, racefree.ErrCommitUnknown) {
			t.Fatalf("ended context: got %v, want ErrCanceled", err)
		}
		if e.Name == "sqlite" {
			return // a held write lock is waited for in the busy handler, which ctx does not interrupt
		}
		holder, err := db.SQL().BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback()
		if _, err := holder.ExecContext(context.Background(), "UPDATE "+b.Table+" SET balance = balance WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		// The context ends once the statement is seen waiting for the
		// held row: a timeout fixed in advance could end it before the
		// statement was sent, on a loaded machine.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go cancelWhenWaiting(db, b.Table, cancel)
		err = transfer(ctx, db, b, 1, 2, 10, racefree.TransferOptions{})
		var cu *racefree.CommitUnknownError
		if isTiDB(db) {
			// No single statement there: the fallback transaction, which
			// never reached COMMIT, is known not to have moved anything.
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, racefree.ErrCanceled) {
				t.Fatalf("context ended while the transaction waited: got %v, want the context's error", err)
			}
			return
		}
		if !errors.As(err, &cu) {
			t.Fatalf("context ended while the statement waited: got %v, want *CommitUnknownError", err)
		}
		holder.Rollback()
		// Unknown indeed: the server may go on with the statement after
		// the client left, and commit it once the row is free (seen on
		// both servers, not every time) — either both rows changed or
		// neither.
		time.Sleep(200 * time.Millisecond)
		got := balances(t, db, b)
		if got[1]+got[2] != 200 || (got[1] != 100 && got[1] != 90) {
			t.Fatalf("balances %v after an unknown outcome: half a transfer", got)
		}
		t.Logf("%s: after the context ended: %v", e.Name, got)
	})
}

// cancelWhenWaiting calls cancel once a session is seen waiting for a row
// lock in a statement on table, polling the server (lockWaitQuery); where
// that is not observable (TiDB), after 300 ms. It gives up waiting, and
// cancels, after 30 s.
func cancelWhenWaiting(db *racefree.DB, table string, cancel context.CancelFunc) {
	defer cancel()
	query := lockWaitQuery(db, table)
	giveUp := time.Now().Add(30 * time.Second)
	for time.Now().Before(giveUp) {
		var n int64
		if query == "" || db.SQL().QueryRowContext(context.Background(), query).Scan(&n) != nil {
			time.Sleep(300 * time.Millisecond)
			return
		}
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
