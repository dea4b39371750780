package bench

import "context"

// hotAccounts is how many accounts the transfer-hot case's callers share:
// so few for 16 callers that transfers queue for rows, where shared
// commits pay (docs/transfer.md). spreadAccounts is transfer-spread's:
// so many that two callers' transfers seldom meet at a row, where only an
// engine that combines transfers into one statement gains by sharing.
const (
	hotAccounts    = 10
	spreadAccounts = 1000
)

func init() {
	Register(&Case{
		Name: "transfer-hot", Title: "transfers on 10 hot accounts, 16 callers",
		Racefree: "racefree.Transfer from 16 goroutines on 10 accounts: behind a busy row, transfers share a transaction " +
			"and its commit where the engine gains by it (PostgreSQL, SQLite)",
		Raw:        "the transfer case's hand-written transfer from 16 goroutines on the same accounts",
		Goroutines: 16, Setup: fixedAccounts(hotAccounts).setup, Ops: fixedAccounts(hotAccounts).ops,
	})
	Register(&Case{
		Name: "transfer-spread", Title: "transfers on 1,000 accounts, 16 callers",
		Racefree: "racefree.Transfer from 16 goroutines on 1,000 accounts: transfers beyond two in flight wait, and those " +
			"on distinct rows run as one combined statement where the engine has one (PostgreSQL)",
		Raw:        "the transfer case's hand-written transfer from 16 goroutines on the same accounts",
		Goroutines: 16, Setup: fixedAccounts(spreadAccounts).setup, Ops: fixedAccounts(spreadAccounts).ops,
	})
}

// fixedAccounts is a transfer case on this many accounts, whatever
// --accounts says.
type fixedAccounts int

func (n fixedAccounts) setup(ctx context.Context, env Env) error {
	env.Accounts = int(n)
	return setupAccounts(ctx, env)
}

// ops is transfer-primitive's pair on the case's accounts.
func (n fixedAccounts) ops(ctx context.Context, env Env) (Pair, error) {
	env.Accounts = int(n)
	return transferPrimitiveOps(ctx, env)
}
