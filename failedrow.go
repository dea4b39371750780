package racefree

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
)

// failedRow returns a *sql.Row whose Scan returns err: what
// Tx.QueryRowContext answers when it cannot run the query, since a
// *sql.Row can only come from a *sql.DB. The DB behind it is a driver that
// fails every connection with the error it is given; it holds no state.
func failedRow(ctx context.Context, err error) *sql.Row {
	return failDB.QueryRowContext(context.WithValue(ctx, failKey{}, err), "")
}

var failDB = sql.OpenDB(failConnector{})

type failKey struct{}

type failConnector struct{}

func (failConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err, ok := ctx.Value(failKey{}).(error); ok {
		return nil, err
	}
	return nil, errors.New("racefree: no statement to run")
}

func (failConnector) Driver() driver.Driver { return failDriver{} }

type failDriver struct{}

func (failDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("racefree: no statement to run")
}
