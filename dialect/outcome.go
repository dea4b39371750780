package dialect

import "context"

// Outcomes. When a COMMIT's answer is lost the client cannot know whether
// the transaction committed; these optional interfaces let an engine that
// can answer the question after the fact, or help a program make work
// idempotent, say how.

// TxState is what the server says, after the fact, about a transaction.
type TxState uint8

// The states a CommitResolver reports.
const (
	// TxStateUnknown: the server no longer knows (the id is too old) or
	// never knew it.
	TxStateUnknown TxState = iota
	// TxCommitted: the transaction committed.
	TxCommitted
	// TxAborted: the transaction was rolled back, or its session ended
	// before it committed.
	TxAborted
	// TxInProgress: the transaction is still open: its session has not yet
	// noticed that the client is gone. Ask again later.
	TxInProgress
)

var txStateNames = [...]string{TxStateUnknown: "unknown", TxCommitted: "committed", TxAborted: "aborted", TxInProgress: "in progress"}

func (s TxState) String() string {
	if int(s) < len(txStateNames) {
		return txStateNames[s]
	}
	return "unknown state"
}

// CommitResolver is implemented by engines that can tell, from another
// session and after the fact, whether a transaction committed (PostgreSQL
// 10 and later: the transaction's id, and its status in the commit log).
// racefree.RunInTx uses it when TxOptions.VerifyCommit is set, so that a
// COMMIT whose answer was lost is settled instead of reported unknown.
type CommitResolver interface {
	// TxIDSQL returns a query that, run in a transaction just before its
	// COMMIT, returns one row with one column: the transaction's id as
	// text, or NULL when the transaction has written nothing (so that its
	// outcome does not matter). ok is false when this server cannot look
	// transactions up (CockroachDB): then VerifyCommit is refused.
	TxIDSQL() (query string, ok bool)
	// TxStatus asks on q, another session, what became of transaction id.
	TxStatus(ctx context.Context, q Querier, id string) (TxState, error)
}

// OnceTabler renders the table of racefree.RunOnce's idempotency keys:
// one row per key, written in the same transaction as the work it
// guards, so that the row exists exactly when the work committed.
type OnceTabler interface {
	// CreateOnceTableSQL returns the statements that create table unless
	// it exists, with the columns
	//
	//	k        the key: text of up to 255 bytes compared byte for byte
	//	         (no case folding, no trailing-space padding), primary key
	//	owner    text of up to 64 characters, NOT NULL
	//	result   binary, NULL allowed, up to at least 16 MB
	//	expires  BIGINT NOT NULL, Unix milliseconds
	//
	// and an index named index on expires. table and index come quoted.
	CreateOnceTableSQL(table, index string) []string
	// SweepOnceSQL returns a statement that deletes at most limit rows of
	// table whose expires is below its one parameter.
	SweepOnceSQL(table string, limit int) string
}
