package pgxrf

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// The session contract (package session) over pgx: racefree's DB, Tx and
// Conn run their statements through these.

// pgxBeginner is what begins a pgx transaction: a pool, a pooled
// connection, a connection.
type pgxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// beginner is a pgxBeginner as a session.Beginner.
type beginner struct{ b pgxBeginner }

func (b beginner) Begin(ctx context.Context, opts session.TxOptions) (session.Tx, error) {
	o, err := pgxOptions(opts)
	if err != nil {
		return nil, err
	}
	tx, err := b.b.BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	return newTxSession(tx), nil
}

// pool is a *pgxpool.Pool as a session.Pool.
type pool struct {
	querier
	beginner
	p *pgxpool.Pool
}

var _ session.Pool = (*pool)(nil)

func newPool(p *pgxpool.Pool) *pool { return &pool{querier{p}, beginner{p}, p} }

func (p *pool) Acquire(ctx context.Context) (session.Conn, error) {
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &poolConn{querier: querier{c}, beginner: beginner{c}, c: c}, nil
}

// poolConn is a *pgxpool.Conn as a session.Conn.
type poolConn struct {
	querier
	beginner
	c    *pgxpool.Conn
	done atomic.Bool // Release or Discard has run; the other then does nothing
}

var (
	_ session.Conn      = (*poolConn)(nil)
	_ session.Discarder = (*poolConn)(nil)
)

// Release returns the connection to the pool (pgxpool itself closes one
// left busy or inside a transaction).
func (c *poolConn) Release() error {
	if c.done.CompareAndSwap(false, true) {
		c.c.Release()
	}
	return nil
}

// closeTimeout bounds the goodbye sent to the server when a connection is
// discarded; the socket closes either way.
const closeTimeout = 5 * time.Second

// Discard takes the connection out of the pool and closes it, so that the
// server ends the session and releases what it held.
func (c *poolConn) Discard() error {
	if !c.done.CompareAndSwap(false, true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return c.c.Hijack().Close(ctx)
}

// connPool is one *pgx.Conn as a session.Pool: every statement, and every
// connection it hands out, is that connection.
type connPool struct {
	single
	c *pgx.Conn
}

var _ session.Pool = (*connPool)(nil)

func newConnPool(c *pgx.Conn) *connPool { return &connPool{single{querier{c}, beginner{c}, c}, c} }

func (p *connPool) Acquire(context.Context) (session.Conn, error) {
	if p.c.IsClosed() {
		return nil, errConnClosed
	}
	return &pinnedConn{single: p.single}, nil
}

// single runs statements and transactions on one *pgx.Conn. Once the
// connection is closed (by Discard, or by its owner) every call fails at
// once with a connection error: pgx would call its error safe to retry,
// and racefree would retry in vain what can never succeed on this
// connection.
type single struct {
	q querier
	b beginner
	c *pgx.Conn
}

// errConnClosed is a connection error, which racefree does not retry.
var errConnClosed = dialect.Wrap(dialect.ClassConnection, errors.New("pgxrf: the *pgx.Conn is closed"))

func (s single) Exec(ctx context.Context, query string, args ...any) (session.Result, error) {
	if s.c.IsClosed() {
		return nil, errConnClosed
	}
	return s.q.Exec(ctx, query, args...)
}

func (s single) Query(ctx context.Context, query string, args ...any) (session.Rows, error) {
	if s.c.IsClosed() {
		return nil, errConnClosed
	}
	return s.q.Query(ctx, query, args...)
}

func (s single) QueryRow(ctx context.Context, query string, args ...any) session.Row {
	if s.c.IsClosed() {
		return errRow{errConnClosed}
	}
	return s.q.QueryRow(ctx, query, args...)
}

func (s single) Begin(ctx context.Context, opts session.TxOptions) (session.Tx, error) {
	if s.c.IsClosed() {
		return nil, errConnClosed
	}
	return s.b.Begin(ctx, opts)
}

// errRow is a Row whose query never ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// pinnedConn is the one connection of a connPool, handed out as a
// session.Conn.
type pinnedConn struct {
	single
	done atomic.Bool // Release or Discard has run; the other then does nothing
}

var (
	_ session.Conn      = (*pinnedConn)(nil)
	_ session.Discarder = (*pinnedConn)(nil)
)

// Release does nothing: the connection stays the DB's.
func (c *pinnedConn) Release() error {
	c.done.Store(true)
	return nil
}

// Discard closes the connection, and with it the DB made by NewConn over
// it: a session lock in doubt must not outlive the uncertainty, and this
// connection is the only one there is. Statements on the DB then fail
// with connection errors.
func (c *pinnedConn) Discard() error {
	if !c.done.CompareAndSwap(false, true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return c.c.Close(ctx)
}

// pgxOptions maps database/sql's transaction options onto pgx's, as pgx's
// database/sql driver does.
func pgxOptions(opts session.TxOptions) (pgx.TxOptions, error) {
	var o pgx.TxOptions
	switch opts.Isolation {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		o.IsoLevel = pgx.ReadUncommitted
	case sql.LevelReadCommitted:
		o.IsoLevel = pgx.ReadCommitted
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		o.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		o.IsoLevel = pgx.Serializable
	default:
		return o, fmt.Errorf("pgxrf: begin transaction: PostgreSQL has no isolation level %v", opts.Isolation)
	}
	if opts.ReadOnly {
		o.AccessMode = pgx.ReadOnly
	}
	return o, nil
}

// sqlOptions maps pgx's transaction options onto database/sql's; nil stays
// nil (unknown).
func sqlOptions(opts *pgx.TxOptions) *sql.TxOptions {
	if opts == nil {
		return nil
	}
	o := &sql.TxOptions{ReadOnly: opts.AccessMode == pgx.ReadOnly}
	switch opts.IsoLevel {
	case pgx.Serializable:
		o.Isolation = sql.LevelSerializable
	case pgx.RepeatableRead:
		o.Isolation = sql.LevelRepeatableRead
	case pgx.ReadCommitted:
		o.Isolation = sql.LevelReadCommitted
	case pgx.ReadUncommitted:
		o.Isolation = sql.LevelReadUncommitted
	}
	return o
}
