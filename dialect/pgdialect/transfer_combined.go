package pgdialect

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.TransferCombiner = (*Dialect)(nil)

// TransferAll runs several transfers on distinct rows as one statement,
// built by combinedTransferSQL. CockroachDB refuses two modifications of
// one table in one statement, as for Transfer.
func (d *Dialect) TransferAll(ctx context.Context, q dialect.Querier, ts []dialect.Transfer, args dialect.CombinedTransfers) ([]dialect.TransferResult, error) {
	if d.cockroachDB || len(ts) == 0 {
		return nil, dialect.ErrTransferUnsupported
	}
	rows, err := q.Query(ctx, combinedTransferSQL(ts[0]), args.From, args.To, args.Amounts, args.Floors)
	if err != nil {
		return nil, combinedErr(err)
	}
	defer rows.Close()
	results := make([]dialect.TransferResult, 0, len(ts))
	for rows.Next() {
		var r dialect.TransferResult
		var n, moved int64
		if err := rows.Scan(&r.FromFound, &r.ToFound, &n, &r.Moved, &moved); err != nil {
			return nil, combinedErr(err)
		}
		r.Rows = int(n)
		results = append(results, r)
	}
	if err := rows.Err(); err != nil {
		return nil, combinedErr(err)
	}
	if len(results) != len(ts) {
		return nil, fmt.Errorf("pgdialect: combined transfer: %d results for %d transfers", len(results), len(ts))
	}
	return results, nil
}

// combinedErr says what a failed combined statement means for the root:
// refused for the table's types (SQLSTATE class 42: an operator, a cast or
// a function the column types lack) it is ErrTransferUnsupported, and the
// root stops combining there; a trigger that skipped a row is told as for
// one transfer; anything else is the server's error.
func combinedErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "42"):
			return fmt.Errorf("pgdialect: combined transfer refused for this table: %w (%w)", dialect.ErrTransferUnsupported, err)
		case pgErr.Code == codeDivisionByZero:
			return fmt.Errorf("pgdialect: combined transfer: the statement changed fewer rows than it moved amounts (does a trigger or rule skip a row?), so it failed and changed nothing: %w", err)
		}
	}
	return err
}

// combinedTransferSQL is several transfers as one data-modifying
// statement, $1 to $4 being arrays of the From keys, the To keys, the
// amounts and the floors:
//
//	WITH racefree_types AS (SELECT FROM t WHERE k = ANY($1) AND k = ANY($2)
//	                          AND v = ANY($3) AND v = ANY($4)),
//	racefree_locked AS MATERIALIZED (
//	  SELECT k, v FROM t WHERE k = ANY($1 || $2) ORDER BY k FOR NO KEY UPDATE),
//	racefree_check AS MATERIALIZED (
//	  SELECT r.i, r.src, r.dst, r.amount, s.v AS src_v, d.v AS dst_v,
//	         s.k IS NOT NULL AS from_found, d.k IS NOT NULL AS to_found,
//	         (s.k IS NOT NULL)::int + (d.k IS NOT NULL AND d.k IS DISTINCT FROM s.k)::int AS n,
//	         COALESCE(s.k IS NOT NULL AND d.k IS NOT NULL AND d.k <> s.k
//	                  AND s.v - r.amount >= r.floor, false) AS ok
//	  FROM unnest($1, $2, $3, $4) WITH ORDINALITY AS r(src, dst, amount, floor, i)
//	  LEFT JOIN racefree_locked s ON s.k = r.src
//	  LEFT JOIN racefree_locked d ON d.k = r.dst),
//	racefree_new AS MATERIALIZED (
//	  SELECT src AS k, src_v - amount AS v FROM racefree_check WHERE ok
//	  UNION ALL SELECT dst, dst_v + amount FROM racefree_check WHERE ok),
//	racefree_moved AS (
//	  UPDATE t SET v = n.v FROM racefree_new n WHERE t.k = n.k RETURNING 1)
//	SELECT c.from_found, c.to_found, c.n, c.ok, m.n / (CASE WHEN m.n = 2 *
//	  (SELECT count(*) FROM racefree_check WHERE ok) THEN 1 ELSE 0 END)
//	FROM racefree_check c, (SELECT count(*) AS n FROM racefree_moved) m ORDER BY c.i
//
// racefree_types is never run: it is there for the server to give the
// four parameters the key's and the value column's array types, which
// unnest alone could not infer, with no type name written into the
// statement. The rest is transferSQL's reasoning for many rows at once:
// racefree_locked locks every row the transfers name in ascending key
// order (so this statement, single transfers and shared transactions
// cannot deadlock one another) and returns each one's latest committed
// value; every decision and new value is computed from those locked
// values, never from the UPDATE's older snapshot; the transfers name
// distinct rows (the root checks), so each row takes one new value.
//
// racefree_new is MATERIALIZED for a reason a test found: written inline
// as a UNION ALL subquery of the UPDATE, the UPDATE skipped a row now and
// then under load — one whose version in the statement's snapshot was
// outdated, which PostgreSQL rechecks against the latest version (its
// EvalPlanQual) with the subquery's row, and the recheck did not find
// it. TestTransfer_AcrossProcesses/spread saw dozens a run; read from a
// materialized CTE, as transferSQL's UPDATE reads its one, none.
//
// The last column is the number of rows changed against twice the number
// of transfers moved: should a row be skipped (a trigger, or two keys the
// column's collation takes as one row), it divides by zero, which fails
// the statement and undoes every change.
func combinedTransferSQL(t dialect.Transfer) string {
	k, v, tbl := t.Key, t.Value, t.Table
	var b strings.Builder
	b.WriteString("WITH racefree_types AS (SELECT FROM " + tbl + " WHERE " + k + " = ANY($1) AND " + k + " = ANY($2) AND " +
		v + " = ANY($3) AND " + v + " = ANY($4)), ")
	b.WriteString("racefree_locked AS MATERIALIZED (SELECT " + k + " AS k, " + v + " AS v FROM " + tbl +
		" WHERE " + k + " = ANY($1 || $2) ORDER BY " + k + " FOR NO KEY UPDATE), ")
	b.WriteString("racefree_check AS MATERIALIZED (SELECT r.i, r.src, r.dst, r.amount, s.v AS src_v, d.v AS dst_v, " +
		"s.k IS NOT NULL AS from_found, d.k IS NOT NULL AS to_found, " +
		"(s.k IS NOT NULL)::int + (d.k IS NOT NULL AND d.k IS DISTINCT FROM s.k)::int AS n, " +
		"COALESCE(s.k IS NOT NULL AND d.k IS NOT NULL AND d.k <> s.k AND s.v - r.amount >= r.floor, false) AS ok " +
		"FROM unnest($1, $2, $3, $4) WITH ORDINALITY AS r(src, dst, amount, floor, i) " +
		"LEFT JOIN racefree_locked s ON s.k = r.src LEFT JOIN racefree_locked d ON d.k = r.dst), ")
	b.WriteString("racefree_new AS MATERIALIZED (SELECT src AS k, src_v - amount AS v FROM racefree_check WHERE ok " +
		"UNION ALL SELECT dst, dst_v + amount FROM racefree_check WHERE ok), ")
	b.WriteString("racefree_moved AS (UPDATE " + tbl + " AS racefree_t SET " + v + " = n.v FROM racefree_new n " +
		"WHERE racefree_t." + k + " = n.k RETURNING 1) ")
	b.WriteString("SELECT c.from_found, c.to_found, c.n, c.ok, m.n / (CASE WHEN m.n = 2 * (SELECT count(*) FROM racefree_check WHERE ok) THEN 1 ELSE 0 END) " +
		"FROM racefree_check c, (SELECT count(*) AS n FROM racefree_moved) m ORDER BY c.i")
	return b.String()
}
