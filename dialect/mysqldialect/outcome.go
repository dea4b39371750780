package mysqldialect

import (
	"strconv"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.OnceTabler = (*Dialect)(nil)

// CreateOnceTableSQL is RunOnce's key table, in InnoDB. The key is
// VARBINARY so that keys compare byte for byte: a VARCHAR in the default
// collation would find "Key" equal to "key", and "key " to "key".
func (d *Dialect) CreateOnceTableSQL(table, index string) []string {
	return []string{"CREATE TABLE IF NOT EXISTS " + table +
		" (k VARBINARY(255) NOT NULL PRIMARY KEY, owner VARCHAR(64) NOT NULL, result LONGBLOB, expires BIGINT NOT NULL," +
		" INDEX " + index + " (expires)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"}
}

// SweepOnceSQL deletes a bounded number of expired keys with DELETE …
// LIMIT.
func (d *Dialect) SweepOnceSQL(table string, limit int) string {
	return "DELETE FROM " + table + " WHERE expires < ? ORDER BY expires LIMIT " + strconv.Itoa(limit)
}
