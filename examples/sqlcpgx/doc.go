// Package sqlcpgxexample shows racefree with sqlc's code for pgx v5: the
// queries sqlc generates run inside pgxrf.RunInTx by handing them the
// pgx.Tx, queries.WithTx(tx), so that racefree retries the whole
// transaction on serialization failures and deadlocks, and racefree's row
// locks and get-or-create join the same transaction through pgxrf.WrapTx.
//
// The package ledgerpg beside it is in the form sqlc v1.29.0 generates
// from sqlc.yaml (sql_package "pgx/v5"). The examples need PostgreSQL, so
// they are compiled, not run, by `go test`; package pgxrf's tests run the
// same queries in its race tests.
package sqlcpgxexample
