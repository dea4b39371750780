package pgxrf

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/internal/pgxvalue"
	"github.com/racefree/racefree/session"
)

// pgxQuerier is what pgx's pool, pooled connections, connections and
// transactions have in common.
type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier is a pgxQuerier as a session.Querier.
type querier struct{ q pgxQuerier }

var _ session.Querier = querier{}

func (q querier) Exec(ctx context.Context, query string, args ...any) (session.Result, error) {
	tag, err := q.q.Exec(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return result(tag), nil
}

func (q querier) Query(ctx context.Context, query string, args ...any) (session.Rows, error) {
	rs, err := q.q.Query(ctx, query, pgxvalue.WithFormats(args)...)
	if err != nil {
		return nil, err
	}
	return rows{rs}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) session.Row {
	return row{q.q.QueryRow(ctx, query, pgxvalue.WithFormats(args)...)}
}

// result is a command tag as a session.Result.
type result pgconn.CommandTag

// RowsAffected is the count in the command tag ("INSERT 0 3": 3).
func (r result) RowsAffected() (int64, error) { return pgconn.CommandTag(r).RowsAffected(), nil }

// rows is pgx.Rows as session.Rows.
type rows struct{ r pgx.Rows }

func (r rows) Next() bool { return r.r.Next() }

func (r rows) Scan(dest ...any) error {
	if hasAny(dest) {
		return r.r.Scan(anyScanner{dest})
	}
	return r.r.Scan(dest...)
}

func (r rows) Err() error { return r.r.Err() }

// Close closes the rows and returns their error, as pgx reports errors
// of the query only after the rows are read or closed.
func (r rows) Close() error {
	r.r.Close()
	return r.r.Err()
}

// row is pgx.Row as session.Row: pgx.ErrNoRows becomes session.ErrNoRows.
type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error {
	var err error
	if hasAny(dest) {
		err = r.r.Scan(anyScanner{dest})
	} else {
		err = r.r.Scan(dest...)
	}
	if err != nil && errors.Is(err, pgx.ErrNoRows) {
		return session.ErrNoRows
	}
	return err
}
