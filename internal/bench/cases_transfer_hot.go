package bench

import "context"

// hotAccounts is how many accounts the transfer-hot case's callers share:
// so few for 16 callers that transfers queue for rows, where shared
// commits pay (docs/transfer.md).
const hotAccounts = 10

func init() {
	Register(&Case{
		Name: "transfer-hot", Title: "transfers on 10 hot accounts, 16 callers",
		Racefree: "racefree.Transfer from 16 goroutines on 10 accounts: behind a busy row, transfers share a transaction " +
			"and its commit where the engine gains by it (PostgreSQL, SQLite)",
		Raw:        "the transfer case's hand-written transfer from 16 goroutines on the same accounts",
		Goroutines: 16, Setup: setupHotAccounts, Ops: transferHotOps,
	})
}

// setupHotAccounts creates hotAccounts accounts, whatever --accounts says.
func setupHotAccounts(ctx context.Context, env Env) error {
	env.Accounts = hotAccounts
	return setupAccounts(ctx, env)
}

// transferHotOps is transfer-primitive's pair on the hot accounts.
func transferHotOps(ctx context.Context, env Env) (Pair, error) {
	env.Accounts = hotAccounts
	return transferPrimitiveOps(ctx, env)
}
