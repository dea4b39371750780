// Package sqlcexample shows racefree with sqlc's code for database/sql: the
// queries sqlc generates run inside racefree.RunInTx by handing them the
// transaction, q.WithTx(tx.SQL()), so that racefree retries the whole
// transaction on serialization failures, deadlocks and SQLITE_BUSY, and
// racefree's row locks and get-or-create join the same transaction.
//
// The package ledgerdb beside it is in the form sqlc v1.29.0 generates
// from sqlc.yaml; the examples run on SQLite, so `go test` runs them
// anywhere.
package sqlcexample
