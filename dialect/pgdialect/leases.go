package pgdialect

import "github.com/racefree/racefree/dialect"

var _ dialect.Leaser = (*Dialect)(nil)

// CreateLeaseTableSQL is the lease table.
func (d *Dialect) CreateLeaseTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + table + " (id BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL," +
		" token BIGINT NOT NULL, holder TEXT NOT NULL, expires_ms BIGINT NOT NULL, writes BIGINT NOT NULL DEFAULT 0)"
}

// NowMillisSQL reads clock_timestamp(), the time the expression runs (not
// the transaction's start, which now() would give), as epoch
// milliseconds, which do not depend on the session's time zone.
func (d *Dialect) NowMillisSQL() string {
	return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
}

// InsertLeaseSQL inserts with ON CONFLICT DO NOTHING, which locks nothing
// when the row exists.
func (d *Dialect) InsertLeaseSQL(table string) string {
	return "INSERT INTO " + table + " (id, name, token, holder, expires_ms) VALUES ($1, $2, 0, '', 0) ON CONFLICT (id) DO NOTHING"
}
