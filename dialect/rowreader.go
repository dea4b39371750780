package dialect

import (
	"context"
	"errors"
)

// Native reads. On a database/sql pool the root runs a get-or-create's
// statements that return one row (the SELECT of a hit, an INSERT …
// RETURNING) with one query each. database/sql's own path to the driver
// costs a few microseconds a query (arguments checked one by one, a Rows
// and its buffers, every column converted to a driver value and then into
// its destination); where the driver's connection has a faster way to
// read one row, a RowReader takes it, on the connection database/sql lends
// (sql.Conn.Raw), and hands back exactly what database/sql's Row.Scan
// would have: the same values in the same destinations, the same errors.

// ErrNotReadNatively is returned by a RowReader that did not run the
// query, before it has sent anything: the root then runs it through
// database/sql. Wrapped with ErrForeignConn, it means no query on this
// pool will be read natively.
var ErrNotReadNatively = errors.New("racefree: row not read natively")

// ErrForeignConn is the reason a RowReader gives (wrapped with
// ErrNotReadNatively) when the connection is not of the driver it knows,
// e.g. a driver wrapped by a tracing library.
var ErrForeignConn = errors.New("racefree: connection of another driver")

// RowReader runs a statement that returns rows on a database/sql driver
// connection without database/sql's per-query work.
type RowReader interface {
	// ReadRow runs query with args on conn, the driver connection
	// sql.Conn.Raw hands over, and scans the first row into dest with
	// database/sql's result: the values Row.Scan would place, or the
	// error it would return (one wrapping sql.ErrNoRows when there is
	// no row). It must not send anything and then leave the row to the
	// caller: the query may be a write. Before sending, it returns an
	// error wrapping ErrNotReadNatively and ErrForeignConn when conn is
	// not its driver's, and driver.ErrBadConn when the connection is
	// found dead, as the driver would for database/sql to retry on
	// another.
	ReadRow(ctx context.Context, conn any, query string, args []any, dest []any) error
}
