package lab

import (
	"context"

	"github.com/racefree/racefree"
)

// The racefree strategy of each scenario: the library's own calls, so that
// the lab measures what users get.

// gocRow is what the goc scenario's GetOrCreate reads back.
type gocRow struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func rfGetOrCreate(ctx context.Context, w *worker, _ *keyed, args []any) error {
	_, _, err := racefree.GetOrCreate[gocRow](ctx, w.db, w.spec.Table,
		racefree.Values{"name": args[0]}, racefree.Values{"value": 1}, racefree.Options{})
	return err
}

func rfLink(ctx context.Context, w *worker, _ *keyed, args []any) error {
	_, err := racefree.Link(ctx, w.db, w.spec.Table, racefree.Values{"post_id": args[0], "tag_id": args[1]}, racefree.Options{})
	return err
}

// rfTransfer locks both accounts with LockRows, which takes them in
// ascending id order so that A→B and B→A transfers cannot deadlock, then
// debits with a condition on the balance, all inside RunInTx, which
// retries what can be retried.
func rfTransfer(ctx context.Context, w *worker, from, to, amount int64) error {
	return racefree.RunInTx(ctx, w.db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if _, err := racefree.LockRows(ctx, tx, w.spec.Table, "id", []int64{from, to}, racefree.RowLock{}); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, w.q("UPDATE {t} SET balance = balance - ? WHERE id = ? AND balance >= ?"), amount, from, amount)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // n == 0: insufficient funds, a declined transfer
		}
		_, err = tx.ExecContext(ctx, w.q("UPDATE {t} SET balance = balance + ? WHERE id = ?"), amount, to)
		return err
	})
}

// rfIncrement is one atomic statement: the database does the read and the
// write under its own row lock.
func rfIncrement(ctx context.Context, w *worker, id int64) error {
	_, err := w.sql.ExecContext(ctx, w.q("UPDATE {t} SET n = n + 1 WHERE id = ?"), id)
	return err
}
