package sqlconv

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
)

// Replay scans a row already read — its column names and driver values —
// into dest through database/sql itself: a driver that holds nothing but
// this row answers one query with it, and Row.Scan converts. It is how a
// native read gives database/sql's result, or its error, for the values
// Assignable turns down, without running the statement again (which a
// write could not).
func Replay(names []string, values []any, dest []any) error {
	return replayDB.QueryRowContext(context.Background(), "replay", &replayRow{names: names, values: values}).Scan(dest...)
}

// replayDB serves every Replay: its connections hold no state of their
// own, so one pool does, and it is never closed.
var replayDB = sql.OpenDB(replayConnector{})

// replayRow is the argument that carries a row to the driver.
type replayRow struct {
	names  []string
	values []any
}

type replayConnector struct{}

func (replayConnector) Connect(context.Context) (driver.Conn, error) { return replayConn{}, nil }
func (replayConnector) Driver() driver.Driver                        { return replayDriver{} }

type replayDriver struct{}

func (replayDriver) Open(string) (driver.Conn, error) { return replayConn{}, nil }

// replayConn answers QueryContext with the row in its argument.
type replayConn struct{}

var (
	_ driver.QueryerContext    = replayConn{}
	_ driver.NamedValueChecker = replayConn{}
)

var errReplayOnly = errors.New("sqlconv: the replay driver only answers Replay")

func (replayConn) Prepare(string) (driver.Stmt, error) { return nil, errReplayOnly }
func (replayConn) Close() error                        { return nil }
func (replayConn) Begin() (driver.Tx, error)           { return nil, errReplayOnly }

// CheckNamedValue lets the *replayRow through unconverted.
func (replayConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (replayConn) QueryContext(_ context.Context, _ string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) != 1 {
		return nil, errReplayOnly
	}
	r, ok := args[0].Value.(*replayRow)
	if !ok {
		return nil, errReplayOnly
	}
	return &replayRows{row: r}, nil
}

type replayRows struct {
	row  *replayRow
	done bool
}

func (r *replayRows) Columns() []string { return r.row.names }
func (r *replayRows) Close() error      { return nil }

func (r *replayRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	for i, v := range r.row.values {
		dest[i] = v
	}
	return nil
}
