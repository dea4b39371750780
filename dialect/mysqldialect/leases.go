package mysqldialect

import "github.com/racefree/racefree/dialect"

var _ dialect.Leaser = (*Dialect)(nil)

// CreateLeaseTableSQL is the lease table, in InnoDB.
func (d *Dialect) CreateLeaseTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + table + " (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL," +
		" token BIGINT NOT NULL, holder VARCHAR(255) NOT NULL, expires_ms BIGINT NOT NULL, writes BIGINT NOT NULL DEFAULT 0)" +
		" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
}

// NowMillisSQL is UTC arithmetic: no time zone or daylight-saving step
// involved.
func (d *Dialect) NowMillisSQL() string {
	return "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)"
}

// InsertLeaseSQL uses ON DUPLICATE KEY UPDATE, which takes the row's
// exclusive lock at once; INSERT IGNORE would take a shared one, and two
// acquirers upgrading it in the UPDATE that follows would deadlock.
func (d *Dialect) InsertLeaseSQL(table string) string {
	return "INSERT INTO " + table + " (id, name, token, holder, expires_ms) VALUES (?, ?, 0, '', 0) ON DUPLICATE KEY UPDATE id = id"
}
