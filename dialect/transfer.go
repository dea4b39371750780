package dialect

import (
	"context"
	"errors"
)

// Transfers. The root's Transfer checks its input (names quoted, the key
// column unique, amounts integers or decimal strings, the two keys
// different), decides where the transfer runs (retries on a pool, a
// savepoint in a transaction whose failed statements abort it) and
// reports the outcome; a Transferer says how the engine moves the amount
// in the fewest round trips. Without one, or when it answers
// ErrTransferUnsupported, the root runs a transaction of its own: it locks
// both rows in key order (SELECT … FOR UPDATE), then debits with the floor
// checked and credits.

// ErrTransferUnsupported is returned by a Transferer that cannot run this
// transfer on this server, before it has sent anything: the root falls
// back to its transaction.
var ErrTransferUnsupported = errors.New("racefree: no single-statement transfer on this server")

// Transfer is one transfer as the root hands it to a Transferer.
type Transfer struct {
	// Table, Key and Value are the quoted table, the quoted column that
	// names a row (a unique index covers exactly it), and the quoted NOT
	// NULL numeric column the amount moves between rows.
	Table, Key, Value string
	// From and To are the keys of the debited and the credited row,
	// bound values of the key column's type, never equal.
	From, To any
	// FromFirst reports that From orders before To as the root orders
	// keys (numbers by value, strings and bytes bytewise, times by time):
	// the order to lock the rows in, for an engine that locks in the
	// order a statement names them. Every transfer locks in this one
	// order, so two transfers cannot deadlock each other.
	FromFirst bool
	// Amount is what moves, greater than zero; Floor the least value
	// the debited row may be left with. Each is an int64 or a decimal
	// string ("12.50", "-3"), already checked.
	Amount, Floor any
	// Decimal reports that Amount or Floor is a decimal string, for
	// engines that must be told to compute exactly.
	Decimal bool
	// InTx reports that q is a transaction, the caller's: a read after
	// the statement must see what the statement saw, not an older
	// snapshot.
	InTx bool
}

// TransferResult is what a transfer found and did.
type TransferResult struct {
	// Moved reports that both rows changed: the debited one by −Amount,
	// the credited one by +Amount. When it is false neither changed.
	Moved bool
	// Rows is how many distinct rows the two keys named (2, or fewer
	// when a row is missing or the column's collation made both keys
	// name one row); FromFound and ToFound whether each key named one.
	// A transfer that found both rows and did not move was declined by
	// the floor. They are read by the statement that moved the amount, or
	// right after it when that statement cannot say.
	Rows               int
	FromFound, ToFound bool
}

// Transferer is implemented by engines that move an amount between two
// rows of one table without the root's transaction: in one statement
// where the engine allows it. The root uses it on a pool, a connection
// and inside a transaction; a statement it sends must be atomic on its
// own (both rows change or neither, also when it fails), lock the two
// rows in one canonical order (FromFirst, or the key's order in the
// index), and check the floor on the debited row's latest committed value
// under that lock, so that no concurrent transfer can overdraw it.
type Transferer interface {
	// Transfer moves t.Amount from t.From's row to t.To's row unless that
	// would leave t.From's below t.Floor, running its statements on q. It
	// returns ErrTransferUnsupported, having sent nothing, when this
	// server cannot; errors of the statements are returned as the driver
	// gave them, for the root to classify.
	Transfer(ctx context.Context, q Querier, t Transfer) (TransferResult, error)
}

// SharedTransferLocker is implemented by engines whose transfers share a
// transaction and a commit behind busy rows (SharedCommits). Before such a
// transaction runs its transfers' statements, the root locks all their
// rows at once, in key order, so that the statements take no lock of
// their own and the transaction cannot deadlock with another. Without
// this interface the root locks them as LockRows does (FOR UPDATE, one
// statement per number of keys).
type SharedTransferLocker interface {
	// LockTransfersSQL returns the statement that locks, in ascending key
	// order and no more strongly than the engine's transfer statement
	// does, the rows of t.Table whose t.Key is in its one bound argument,
	// a slice of the keys ([]int64 or []string); or "" when the
	// transaction needs no statement for it (one writer, whose first
	// write holds the whole database).
	LockTransfersSQL(t Transfer) string
}

// TransferCombiner is implemented by engines that run several transfers
// on distinct rows of one table as one statement: the transfers a shared
// transaction takes (SharedCommits) when no two of them name a common
// key. One statement instead of one per transfer is what makes sharing
// pay where rows are not hot: the server parses, plans and executes once
// for the lot.
type TransferCombiner interface {
	// TransferAll runs ts, all on one table and key column and no key in
	// two of them, as one statement on q: it locks every row in
	// ascending key order, decides each transfer on its debited row's
	// locked value, moves the amounts of the transfers the floor allows
	// and returns one result per transfer, in ts's order. The statement
	// is atomic: a failure changes nothing. keys holds every From and
	// To, and amounts and floors each transfer's Amount and Floor, in
	// slices of one element type ([]int64 or []string), as the root
	// builds them. It returns ErrTransferUnsupported, having sent
	// nothing, when this server cannot; a statement the server refuses
	// for the table's types is reported wrapped with it too, so that the
	// root stops combining on that table.
	TransferAll(ctx context.Context, q Querier, ts []Transfer, keys CombinedTransfers) ([]TransferResult, error)
}

// CombinedTransfers holds the bound arguments of a combined transfer
// statement, one element per transfer: the From keys, the To keys, the
// amounts and the floors, each a []int64 or a []string (keys as the
// lane orders them, amounts and floors as Transfer holds them).
type CombinedTransfers struct {
	From, To, Amounts, Floors any
}
