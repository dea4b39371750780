package sqlitedialect

import (
	"strconv"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.OnceTabler = (*Dialect)(nil)

// CreateOnceTableSQL is RunOnce's key table. TEXT compares with the
// BINARY collation, byte for byte.
func (d *Dialect) CreateOnceTableSQL(table, index string) []string {
	return []string{
		"CREATE TABLE IF NOT EXISTS " + table +
			" (k TEXT NOT NULL PRIMARY KEY, owner TEXT NOT NULL, result BLOB, expires INTEGER NOT NULL)",
		"CREATE INDEX IF NOT EXISTS " + index + " ON " + table + " (expires)",
	}
}

// SweepOnceSQL deletes a bounded number of expired keys: DELETE … LIMIT
// needs a compile-time option, so the keys are chosen by a subquery.
func (d *Dialect) SweepOnceSQL(table string, limit int) string {
	return "DELETE FROM " + table + " WHERE k IN (SELECT k FROM " + table +
		" WHERE expires < ? LIMIT " + strconv.Itoa(limit) + ")"
}
