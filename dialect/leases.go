package dialect

// Leaser renders what the root's leases (AcquireLease, Renew, Check)
// need that differs by engine: the lease table, the database's clock, and
// an insert that leaves an existing row alone. The rest of their
// statements are plain UPDATEs and SELECTs. Without it, leases are
// refused with ErrLockUnsupported.
type Leaser interface {
	// CreateLeaseTableSQL returns the statement that creates table, unless
	// it exists, with the columns id (a BIGINT primary key), name and
	// holder (text of up to 255 characters), token and expires_ms
	// (BIGINT), and writes (a BIGINT counter, default 0).
	CreateLeaseTableSQL(table string) string
	// NowMillisSQL returns an expression for the database's clock in
	// milliseconds since the Unix epoch, as an integer. The database's
	// clock, not each client's, so that clients with skewed clocks agree
	// on when a lease expires; it must not step with time zones or
	// daylight saving.
	NowMillisSQL() string
	// InsertLeaseSQL returns the statement that inserts into table the
	// row (id, name, token, holder, expires_ms) = (the first parameter,
	// the second, 0, '', 0) unless a row with that id exists, and then
	// changes nothing. Either way the statement must leave the row
	// exclusively locked, or not locked at all: a shared lock (what
	// MySQL's INSERT IGNORE takes on a duplicate) would deadlock two
	// acquirers that both upgrade it in the UPDATE that follows.
	InsertLeaseSQL(table string) string
}
