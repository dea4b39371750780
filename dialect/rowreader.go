package dialect

import (
	"context"
	"errors"
)

// Native reads. On a database/sql pool the root reads a get-or-create hit
// with one query. database/sql's own path to the driver costs a few
// microseconds a query (arguments checked one by one, a Rows and its
// buffers, every column converted to a driver value and then into its
// destination); where the driver's connection has a faster way to read
// one row, a RowReader takes it, on the connection database/sql lends
// (sql.Conn.Raw), and hands back exactly what database/sql's Row.Scan
// would have: the same values in the same destinations, the same errors.

// ErrNotReadNatively is returned by a RowReader that did not read the row,
// before it has sent anything, or after a read whose values must go
// through database/sql to reach their destinations: the root then runs the
// query through database/sql. Wrapped with ErrForeignConn, it means no
// query on this pool will be read natively.
var ErrNotReadNatively = errors.New("racefree: row not read natively")

// ErrForeignConn is the reason a RowReader gives (wrapped with
// ErrNotReadNatively) when the connection is not of the driver it knows,
// e.g. a driver wrapped by a tracing library.
var ErrForeignConn = errors.New("racefree: connection of another driver")

// RowReader reads one row on a database/sql driver connection without
// database/sql's conversions.
type RowReader interface {
	// ReadRow runs query with args on conn, the driver connection
	// sql.Conn.Raw hands over, and scans the first row into dest as
	// database/sql's Row.Scan would (an error wrapping sql.ErrNoRows
	// when there is none). It returns an error wrapping
	// ErrNotReadNatively when it did not scan the row: a destination
	// needs a conversion only database/sql makes, or conn is not its
	// driver's (then also wrapping ErrForeignConn). It returns
	// driver.ErrBadConn when the connection was found dead before the
	// query was sent, as the driver would for database/sql to retry on
	// another.
	ReadRow(ctx context.Context, conn any, query string, args []any, dest []any) error
}
