package mysqldialect

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

var (
	_ dialect.FreshReader     = (*Dialect)(nil)
	_ dialect.IsolationReader = (*Dialect)(nil)
	_ dialect.IgnoreChecker   = (*Dialect)(nil)
)

// FreshRead returns the locking clause a re-read needs to see rows
// committed after the transaction's snapshot. InnoDB at REPEATABLE READ
// (MySQL's default) reads the
// snapshot of the transaction's first read, but a locking read reads the
// latest committed version, so the re-read after a lost race locks in
// share mode. TiDB has no shared row locks; in its pessimistic mode FOR
// UPDATE reads the latest committed version, and in optimistic mode
// nothing but a restart does.
func (d *Dialect) FreshRead(iso sql.IsolationLevel, known bool) (string, bool) {
	if dialect.ReadsCommitted(iso, known, false) {
		return "", true
	}
	switch {
	case d.flavor != TiDB:
		return " LOCK IN SHARE MODE", true
	case d.optimistic:
		return "", false
	}
	return " FOR UPDATE", true
}

// CurrentIsolation reads the session's level. A level set for one
// transaction only (SET TRANSACTION, as database/sql's BeginTx does) is
// not visible this way, which is why WrapTx should be given the options.
func (d *Dialect) CurrentIsolation(ctx context.Context, q dialect.Querier) (sql.IsolationLevel, error) {
	query := "SELECT @@transaction_isolation"
	if d.flavor == MariaDB {
		query = "SELECT @@tx_isolation" // MariaDB before 11.1 knows only this name
	}
	var s string
	if err := q.QueryRow(ctx, query).Scan(&s); err != nil {
		return sql.LevelDefault, err
	}
	return dialect.ParseIsolation(s), nil
}

// MariaDB's INSERT IGNORE skips a row that conflicts, which is what a batch
// needs: the rows RETURNING gives back are exactly the ones this statement
// created, and one existing key no longer fails the whole statement. But
// IGNORE also turns into warnings the errors that strict mode raises for a
// value the column cannot hold (too long, out of range, a bad date, NULL in
// NOT NULL), and then stores the value altered. CheckIgnored tells the two
// apart after the statement:
//
//   - every skipped row leaves one warning (1062 duplicate key, 1452
//     foreign key, 4025 CHECK constraint), and every row that was not
//     skipped came back through RETURNING: so skipped = sent − returned;
//   - a warning more than that was a value altered on its way in.
//
// @@warning_count counts every warning of the statement, including those
// past max_error_count that SHOW WARNINGS does not list, and reading it
// does not reset it (both checked on MariaDB 10.11, with and without
// interpolateParams).

// skipWarnings are the warnings of rows IGNORE skipped rather than altered:
// the message of an altered value is the one worth reporting.
var skipWarnings = map[int64]bool{erDupEntry: true, erNoReferencedRow2: true, erConstraintFailed: true, 1526: true}

// CheckIgnored returns the first altered value's warning when the INSERT
// IGNORE just run on q stored one.
func (d *Dialect) CheckIgnored(ctx context.Context, q dialect.Querier, sent, returned int) (string, error) {
	var warnings int64
	if err := q.QueryRow(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return "", fmt.Errorf("mysqldialect: read warning count: %w", err)
	}
	if warnings <= int64(sent-returned) {
		return "", nil
	}
	return firstAltered(ctx, q), nil
}

// firstAltered returns the first warning of the last statement on q that
// is not a skipped row's, for the error message.
func firstAltered(ctx context.Context, q dialect.Querier) string {
	rs, err := q.Query(ctx, "SHOW WARNINGS")
	if err != nil {
		return fmt.Sprintf("SHOW WARNINGS failed: %v", err)
	}
	defer rs.Close()
	for rs.Next() {
		var level, msg string
		var code int64
		if err := rs.Scan(&level, &code, &msg); err != nil {
			return fmt.Sprintf("SHOW WARNINGS failed: %v", err)
		}
		if !skipWarnings[code] {
			return fmt.Sprintf("%s %d: %s", level, code, msg)
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Sprintf("SHOW WARNINGS failed: %v", err)
	}
	return "the warning is past max_error_count; SHOW WARNINGS does not list it"
}
