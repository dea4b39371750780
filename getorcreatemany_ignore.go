package racefree

import (
	"context"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

// MariaDB's INSERT IGNORE skips a row that conflicts, which is what a batch
// needs: the rows RETURNING gives back are exactly the ones this statement
// created, and one existing key no longer fails the whole statement. But
// IGNORE also turns into warnings the errors that strict mode raises for a
// value the column cannot hold (too long, out of range, a bad date, NULL in
// NOT NULL), and then stores the value altered. checkIgnored tells the two
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
// interpolateParams). The statement runs in a transaction or savepoint
// (writeMissing), so the caller can undo it: checkIgnored's error does.

// warnDupEntry is the warning of a row skipped for a duplicate key.
const warnDupEntry = 1062

// skipWarnings are the warnings of rows IGNORE skipped rather than altered:
// the message of an altered value is the one worth reporting.
var skipWarnings = map[int64]bool{warnDupEntry: true, 1452: true, 4025: true, 1526: true}

// checkIgnored fails when the INSERT IGNORE just run on q, which sent rows
// and got returned rows back, stored some value altered. q must be the
// same session: a transaction.
func (o *op) checkIgnored(ctx context.Context, q dialect.Querier, sent, returned int) error {
	var warnings int64
	if err := q.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return o.db.wrapErr(o.verb+": read warning count", err)
	}
	skipped := int64(sent - returned)
	if warnings <= skipped {
		return nil
	}
	return inputError(o.verb, "%d of %d rows were skipped, but the server raised %d warnings: it would have stored a value altered (%s); the batch was rolled back",
		skipped, sent, warnings, o.firstAltered(ctx, q))
}

// firstAltered returns the first warning of the last statement on q that
// is not a skipped row's, for the error message.
func (o *op) firstAltered(ctx context.Context, q dialect.Querier) string {
	rs, err := q.QueryContext(ctx, "SHOW WARNINGS")
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
