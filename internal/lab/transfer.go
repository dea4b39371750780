package lab

import "context"

// transferArgs picks two different accounts and an amount.
func transferArgs(w *worker) (from, to, amount int64) {
	from = int64(w.rng.IntN(w.spec.Keys) + 1)
	to = int64(w.rng.IntN(w.spec.Keys-1) + 1)
	if to >= from {
		to++
	}
	return from, to, int64(w.rng.IntN(maxAmount) + 1)
}

// transferBody is the transfer as people write it: read both balances,
// check the funds, write both new balances. Rows are read in argument
// order, with suffix appended to the reads (" FOR UPDATE").
func transferBody(ctx context.Context, w *worker, q querier, suffix string, from, to, amount int64) error {
	var fb, tb int64
	if err := q.QueryRowContext(ctx, w.q("SELECT balance FROM {t} WHERE id = ?"+suffix), from).Scan(&fb); err != nil {
		return err
	}
	if err := q.QueryRowContext(ctx, w.q("SELECT balance FROM {t} WHERE id = ?"+suffix), to).Scan(&tb); err != nil {
		return err
	}
	if fb < amount {
		return nil // insufficient funds: a declined transfer, not an error
	}
	if _, err := q.ExecContext(ctx, w.q("UPDATE {t} SET balance = ? WHERE id = ?"), fb-amount, from); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, w.q("UPDATE {t} SET balance = ? WHERE id = ?"), tb+amount, to)
	return err
}

var transferOps = map[string]opFunc{
	"naive": func(ctx context.Context, w *worker) error {
		from, to, amount := transferArgs(w)
		return transferBody(ctx, w, w.sql, "", from, to, amount)
	},
	"mutex": func(ctx context.Context, w *worker) error {
		from, to, amount := transferArgs(w)
		w.mutex.Lock()
		defer w.mutex.Unlock()
		return transferBody(ctx, w, w.sql, "", from, to, amount)
	},
	"tablelock": func(ctx context.Context, w *worker) error {
		from, to, amount := transferArgs(w)
		return w.tableLock(ctx, func(q querier) error { return transferBody(ctx, w, q, "", from, to, amount) })
	},
	"forupdate": func(ctx context.Context, w *worker) error {
		from, to, amount := transferArgs(w)
		return w.inTx(ctx, nil, func(q querier) error { return transferBody(ctx, w, q, " FOR UPDATE", from, to, amount) })
	},
	"serializable": func(ctx context.Context, w *worker) error {
		from, to, amount := transferArgs(w)
		return w.serializable(ctx, func(q querier) error { return transferBody(ctx, w, q, "", from, to, amount) })
	},
	"racefree": func(ctx context.Context, w *worker) error {
		from, to, amount := transferArgs(w)
		return rfTransfer(ctx, w, from, to, amount)
	},
}
