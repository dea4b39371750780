package pgdialect

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/racefree/racefree/dialect"
)

var (
	_ dialect.CommitResolver = (*Dialect)(nil)
	_ dialect.OnceTabler     = (*Dialect)(nil)
)

// TxIDSQL reads the transaction's id only if it has one: PostgreSQL
// assigns an id at a transaction's first write (a row lock included), so
// a transaction that wrote nothing has none, and nothing to settle.
// PostgreSQL 13 has pg_current_xact_id_if_assigned (xid8); 10 to 12 the
// txid_ functions, which return the same 64-bit id. CockroachDB has
// neither.
func (d *Dialect) TxIDSQL() (string, bool) {
	switch {
	case d.cockroachDB || d.versionNum < 100000:
		return "", false
	case d.versionNum < 130000:
		return "SELECT txid_current_if_assigned()::text", true
	}
	return "SELECT pg_current_xact_id_if_assigned()::text", true
}

// TxStatus asks pg_xact_status (txid_status before 13): "committed",
// "aborted" (also for a transaction whose session died before COMMIT, or
// that a crash cut short), "in progress", or NULL when the id is older
// than the commit log kept.
func (d *Dialect) TxStatus(ctx context.Context, q dialect.Querier, id string) (dialect.TxState, error) {
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return dialect.TxStateUnknown, fmt.Errorf("pgdialect: transaction id %q: %w", id, err)
	}
	query := "SELECT pg_xact_status($1::xid8)"
	if d.versionNum < 130000 {
		query = "SELECT txid_status($1::bigint)"
	}
	var status sql.NullString
	if err := q.QueryRow(ctx, query, id).Scan(&status); err != nil {
		return dialect.TxStateUnknown, err
	}
	switch status.String {
	case "committed":
		return dialect.TxCommitted, nil
	case "aborted":
		return dialect.TxAborted, nil
	case "in progress":
		return dialect.TxInProgress, nil
	}
	return dialect.TxStateUnknown, nil
}

// CreateOnceTableSQL is RunOnce's key table; text compares byte for byte
// in the default collation's equality.
func (d *Dialect) CreateOnceTableSQL(table, index string) []string {
	return []string{
		"CREATE TABLE IF NOT EXISTS " + table +
			" (k VARCHAR(255) NOT NULL PRIMARY KEY, owner VARCHAR(64) NOT NULL, result BYTEA, expires BIGINT NOT NULL)",
		"CREATE INDEX IF NOT EXISTS " + index + " ON " + table + " (expires)",
	}
}

// SweepOnceSQL deletes a bounded number of expired keys: PostgreSQL's
// DELETE has no LIMIT, so the keys are chosen by a subquery.
func (d *Dialect) SweepOnceSQL(table string, limit int) string {
	return "DELETE FROM " + table + " WHERE k IN (SELECT k FROM " + table +
		" WHERE expires < $1 LIMIT " + strconv.Itoa(limit) + ")"
}
