package bench

import (
	"context"
	"errors"

	"github.com/racefree/racefree"
)

func init() {
	Register(&Case{
		Name: "transfer-primitive", Title: "transfer with racefree.Transfer",
		Racefree:   "racefree.Transfer: one statement where the engine allows it (README's transfer)",
		Raw:        "BEGIN; conditional debit and credit in ascending id order; COMMIT",
		Goroutines: 1, Setup: setupAccounts, Ops: transferPrimitiveOps,
	})
}

// transferPrimitiveOps pairs racefree.Transfer with the transfer case's
// hand-written side: the same accounts, amounts and statements.
func transferPrimitiveOps(ctx context.Context, env Env) (Pair, error) {
	p, err := transferOps(ctx, env)
	if err != nil {
		return Pair{}, err
	}
	p.Racefree = func(ctx context.Context, w *Worker) error {
		from, to, amount := transferArgs(w, env.Accounts)
		err := racefree.Transfer(ctx, env.DB, env.Table, "balance", from, to, amount, racefree.TransferOptions{})
		if errors.Is(err, racefree.ErrBelowFloor) {
			return errDeclined
		}
		return err
	}
	return p, nil
}
