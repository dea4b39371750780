package pgdialect

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.Transferer = (*Dialect)(nil)

// codeDivisionByZero is what the transfer statement's guard raises when
// one of the two rows changed and the other did not (see transferSQL).
const codeDivisionByZero = "22012"

// Transfer is one statement, one round trip, built by transferSQL.
// CockroachDB refuses two modifications of one table in one statement, so
// there the root's transaction runs instead.
func (d *Dialect) Transfer(ctx context.Context, q dialect.Querier, t dialect.Transfer) (dialect.TransferResult, error) {
	if d.cockroachDB {
		return dialect.TransferResult{}, dialect.ErrTransferUnsupported
	}
	var rows, fromFound, toFound, moved int64
	err := q.QueryRow(ctx, transferSQL(t), t.From, t.To, t.Amount, t.Floor).Scan(&rows, &fromFound, &toFound, &moved)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeDivisionByZero {
		return dialect.TransferResult{}, fmt.Errorf("pgdialect: transfer: the statement changed one row of two (does a trigger or rule skip a row?), so it failed and changed nothing: %w", err)
	}
	if err != nil {
		return dialect.TransferResult{}, err
	}
	return dialect.TransferResult{Moved: moved == 2, Rows: int(rows), FromFound: fromFound > 0, ToFound: toFound > 0}, nil
}

// transferSQL is the transfer as one data-modifying statement:
//
//	WITH racefree_locked AS MATERIALIZED (
//	  SELECT k, v FROM t WHERE k IN ($1, $2) ORDER BY k FOR NO KEY UPDATE),
//	racefree_check AS (
//	  SELECT count(*) AS n, count(*) FILTER (WHERE k = $1) AS from_n,
//	         count(*) FILTER (WHERE k = $2) AS to_n,
//	         max(v) FILTER (WHERE k = $1) AS src, max(v) FILTER (WHERE k = $2) AS dst
//	  FROM racefree_locked),
//	racefree_moved AS (
//	  UPDATE t SET v = CASE WHEN t.k = $1 THEN c.src - $3 ELSE c.dst + $3 END
//	  FROM racefree_check c WHERE t.k IN ($1, $2) AND c.n = 2 AND c.src - $3 >= $4
//	  RETURNING 1)
//	SELECT c.n, c.from_n, c.to_n, m.n / ((m.n + 1) % 2)
//	FROM racefree_check c, (SELECT count(*) AS n FROM racefree_moved) m
//
// racefree_locked locks both rows in key order (the LockRows node sits
// above the Sort) and, at READ COMMITTED, returns each row's latest
// committed version once its lock is granted; MATERIALIZED keeps it from
// being folded into the statement that reads it. racefree_check reads the
// locked values once. The UPDATE decides and computes on them, never on
// the row it scans, for two reasons found by tests. Its scan reads the
// statement's snapshot, older than the locks: a filter of its own would
// skip a row whose snapshot value failed it without looking at the latest
// version (TestTransfer_DecidesOnLatestValue: a transfer declined on a
// balance that the commit it waited for had raised), and new values
// computed from the snapshot version are checked against the table's
// CHECK constraints before PostgreSQL finds that version outdated and
// computes again from the latest (a CHECK (balance >= 0) failed under load
// on a value never written). The locked values are the latest, since the
// statement holds their locks: the UPDATE writes exactly locked − amount
// and locked + amount, to both rows or neither, its condition being the
// same for both.
//
// No UPDATE takes a lock the first part does not already hold (FOR NO KEY
// UPDATE is what an UPDATE of a non-key column takes), so a transfer's
// locks are always taken in ascending key order and two transfers cannot
// deadlock each other. At REPEATABLE READ and SERIALIZABLE a row changed
// since the snapshot fails the lock with a serialization failure instead.
//
// The last column is the number of rows changed, 0 or 2; should a trigger
// skip one row, it divides by zero, which fails the statement and so
// undoes the other row's change.
func transferSQL(t dialect.Transfer) string {
	k, v, tbl := t.Key, t.Value, t.Table
	return "WITH racefree_locked AS MATERIALIZED (SELECT " + k + ", " + v + " FROM " + tbl +
		" WHERE " + k + " IN ($1, $2) ORDER BY " + k + " FOR NO KEY UPDATE), " +
		"racefree_check AS (SELECT count(*) AS n, count(*) FILTER (WHERE " + k + " = $1) AS from_n, " +
		"count(*) FILTER (WHERE " + k + " = $2) AS to_n, max(" + v + ") FILTER (WHERE " + k + " = $1) AS src, " +
		"max(" + v + ") FILTER (WHERE " + k + " = $2) AS dst FROM racefree_locked), " +
		"racefree_moved AS (UPDATE " + tbl + " AS racefree_t SET " + v + " = CASE WHEN racefree_t." + k + " = $1 THEN c.src - $3 ELSE c.dst + $3 END" +
		" FROM racefree_check c WHERE racefree_t." + k + " IN ($1, $2) AND c.n = 2 AND c.src - $3 >= $4 RETURNING 1) " +
		"SELECT c.n, c.from_n, c.to_n, m.n / ((m.n + 1) % 2) FROM racefree_check c, (SELECT count(*) AS n FROM racefree_moved) m"
}

var _ dialect.SharedTransferLocker = (*Dialect)(nil)

// LockTransfersSQL locks the rows of a shared transaction's transfers in
// one statement: FOR NO KEY UPDATE, as the transfer statement itself, so
// that inserts of rows that reference them (a foreign key's KEY SHARE
// lock) do not wait for the shared transaction, and one statement text per
// table whatever the number of keys (the array's element type is the key
// column's, inferred by the server).
func (d *Dialect) LockTransfersSQL(t dialect.Transfer) string {
	return "SELECT " + t.Key + " FROM " + t.Table + " WHERE " + t.Key + " = ANY($1) ORDER BY " + t.Key + " FOR NO KEY UPDATE"
}
