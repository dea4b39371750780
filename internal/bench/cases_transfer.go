package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/racefree/racefree"
)

// initialBalance is every account's balance: large enough that no transfer
// of the run is ever declined, so both sides always do the same work.
const initialBalance = 1_000_000_000_000

// maxAmount bounds one transfer's amount.
const maxAmount = 100

func init() {
	Register(&Case{
		Name: "transfer", Title: "transfer between two accounts",
		Racefree:   "RunInTx + LockRows + conditional debit + credit (a transfer of several statements, locked first)",
		Raw:        "BEGIN; conditional debit and credit in ascending id order; COMMIT",
		Goroutines: 1, Setup: setupAccounts, Ops: transferOps,
	})
}

// setupAccounts creates env.Accounts accounts with initialBalance each.
func setupAccounts(ctx context.Context, env Env) error {
	if env.Accounts < 2 {
		return fmt.Errorf("bench: transfer needs at least 2 accounts, got %d", env.Accounts)
	}
	d := env.DB.Dialect()
	ty, err := typesFor(d)
	if err != nil {
		return err
	}
	qs, err := stmts(d, env.Table, "CREATE TABLE {t} (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)"+ty.suffix)
	if err != nil {
		return err
	}
	// The values are numbers the bench made, so they are written inline.
	for lo := 1; lo <= env.Accounts; lo += 500 {
		var b strings.Builder
		b.WriteString("INSERT INTO {t} (id, balance) VALUES ")
		for i := lo; i < lo+500 && i <= env.Accounts; i++ {
			if i > lo {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,%d)", i, initialBalance)
		}
		s, err := stmt(d, env.Table, b.String())
		if err != nil {
			return err
		}
		qs = append(qs, s)
	}
	return execAll(ctx, env.DB.SQL(), qs...)
}

// transferArgs picks two different accounts and an amount.
func transferArgs(w *Worker, accounts int) (from, to, amount int64) {
	from = int64(w.Rand.IntN(accounts) + 1)
	to = int64(w.Rand.IntN(accounts-1) + 1)
	if to >= from {
		to++
	}
	return from, to, int64(w.Rand.IntN(maxAmount) + 1)
}

// errDeclined: the conditional debit found too little money. With
// initialBalance it never happens; if it does, the run says so.
var errDeclined = errors.New("bench: transfer declined for lack of funds")

func transferOps(_ context.Context, env Env) (Pair, error) {
	if env.Accounts < 2 {
		return Pair{}, fmt.Errorf("bench: transfer needs at least 2 accounts, got %d", env.Accounts)
	}
	qs, err := stmts(env.DB.Dialect(), env.Table,
		"UPDATE {t} SET balance = balance - ? WHERE id = ? AND balance >= ?",
		"UPDATE {t} SET balance = balance + ? WHERE id = ?")
	if err != nil {
		return Pair{}, err
	}
	debit, credit := qs[0], qs[1]
	doDebit := func(ctx context.Context, q interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, from, amount int64) error {
		res, err := q.ExecContext(ctx, debit, amount, from, amount)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = errDeclined
		}
		return err
	}

	// The hand-written transfer: one transaction, the two conditional
	// UPDATEs in ascending id order so that A→B and B→A cannot deadlock,
	// no retry loop.
	raw := func(ctx context.Context, w *Worker) error {
		from, to, amount := transferArgs(w, env.Accounts)
		tx, err := env.DB.SQL().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if from < to {
			err = doDebit(ctx, tx, from, amount)
			if err == nil {
				_, err = tx.ExecContext(ctx, credit, amount, to)
			}
		} else {
			_, err = tx.ExecContext(ctx, credit, amount, to)
			if err == nil {
				err = doDebit(ctx, tx, from, amount)
			}
		}
		if err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	rf := func(ctx context.Context, w *Worker) error {
		from, to, amount := transferArgs(w, env.Accounts)
		return racefree.RunInTx(ctx, env.DB, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if _, err := racefree.LockRows(ctx, tx, env.Table, "id", []int64{from, to}, racefree.RowLockOptions{}); err != nil {
				return err
			}
			if err := doDebit(ctx, tx, from, amount); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, credit, amount, to)
			return err
		})
	}
	return Pair{Raw: raw, Racefree: rf, RawSQL: joinSQL("BEGIN", debit+"  -- lower id first", credit, "COMMIT")}, nil
}
