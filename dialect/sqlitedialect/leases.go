package sqlitedialect

import "github.com/racefree/racefree/dialect"

var _ dialect.Leaser = (*Dialect)(nil)

// CreateLeaseTableSQL is the lease table.
func (d *Dialect) CreateLeaseTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + table + " (id BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL," +
		" token BIGINT NOT NULL, holder TEXT NOT NULL, expires_ms BIGINT NOT NULL, writes BIGINT NOT NULL DEFAULT 0)"
}

// NowMillisSQL reads julianday('now'), the UTC time in days since the
// Julian epoch, as Unix epoch milliseconds.
func (d *Dialect) NowMillisSQL() string {
	return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
}

// InsertLeaseSQL inserts with ON CONFLICT DO NOTHING; the transaction
// holds the database's write lock anyway.
func (d *Dialect) InsertLeaseSQL(table string) string {
	return "INSERT INTO " + table + " (id, name, token, holder, expires_ms) VALUES (?, ?, 0, '', 0) ON CONFLICT (id) DO NOTHING"
}
