package pgdialect

import (
	"context"
	"database/sql"

	"github.com/racefree/racefree/dialect"
)

var (
	_ dialect.FreshReader     = (*Dialect)(nil)
	_ dialect.IsolationReader = (*Dialect)(nil)
	_ dialect.UpsertFlagger   = (*Dialect)(nil)
)

// FreshRead needs no clause, and is possible only below REPEATABLE READ:
// at READ COMMITTED (PostgreSQL's default) each statement sees
// what was committed before it began. At REPEATABLE READ and SERIALIZABLE
// every statement, a locking one included, reads the snapshot of the
// transaction's first statement: only a restart sees a later commit.
func (d *Dialect) FreshRead(iso sql.IsolationLevel, known bool) (string, bool) {
	return "", dialect.ReadsCommitted(iso, known, !d.cockroachDB)
}

// CurrentIsolation reads transaction_isolation.
func (d *Dialect) CurrentIsolation(ctx context.Context, q dialect.Querier) (sql.IsolationLevel, error) {
	var s string
	if err := q.QueryRow(ctx, "SHOW transaction_isolation").Scan(&s); err != nil {
		return sql.LevelDefault, err
	}
	return dialect.ParseIsolation(s), nil
}

// UpsertInserted reads whether the upsert inserted from the row's old
// version on PostgreSQL 18 and later (RETURNING old.key IS NULL: the old
// row has no values when the statement inserted it, which is exact), and
// from xmax = 0 before: a freshly inserted tuple has no deleting or locking
// transaction, while the new version an ON CONFLICT DO UPDATE writes
// carries this one's — right unless something locks the new tuple within
// the statement. CockroachDB has neither.
func (d *Dialect) UpsertInserted(quotedKey string) (string, bool) {
	switch {
	case d.cockroachDB:
		return "", false
	case d.versionNum >= 180000 && quotedKey != "":
		return "(old." + quotedKey + " IS NULL)", true
	}
	return "(xmax = 0)", true
}
