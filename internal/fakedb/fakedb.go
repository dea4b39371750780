// Package fakedb is a database/sql driver and a dialect that run no SQL and
// fail on demand, for unit tests of racefree's retry and commit logic: every
// Begin, Exec and Commit asks a hook what to return, and is counted.
//
// A DB can also play a server it is not (see Server): queries are answered
// from a script of replies matched by their text, and every statement is
// logged, so that a test can run a dialect or racefree's verbs against an
// engine this machine cannot run (CockroachDB) and check what was sent.
package fakedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"

	"github.com/racefree/racefree/dialect"
)

// Hooks decide what each call returns; a nil hook succeeds.
type Hooks struct {
	Begin    func(n int) error // n counts calls from 1
	Commit   func(n int) error
	Rollback func(n int) error
	// Server answers queries and may fail statements; nil answers every
	// query with an error and runs every Exec.
	Server *Server
}

// Calls counts what the driver was asked to do.
type Calls struct {
	Begin, Commit, Rollback, Exec int
}

// DB is a fake database: open it with Open, inspect it with Calls.
type DB struct {
	mu    sync.Mutex // guards hooks, calls and log
	hooks Hooks
	calls Calls
	log   []string
}

// Open returns a *sql.DB backed by a fake whose behaviour hooks decides.
func Open(hooks Hooks) (*sql.DB, *DB) {
	f := &DB{hooks: hooks}
	return sql.OpenDB(connector{f}), f
}

// Calls returns the counts so far.
func (f *DB) Calls() Calls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Log returns every statement sent so far, in order, with BEGIN (and its
// isolation level and read-only flag), COMMIT and ROLLBACK.
func (f *DB) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *DB) record(stmt string) {
	f.mu.Lock()
	f.log = append(f.log, stmt)
	f.mu.Unlock()
}

type connector struct{ f *DB }

func (c connector) Connect(context.Context) (driver.Conn, error) { return &conn{f: c.f}, nil }
func (c connector) Driver() driver.Driver                        { return drv{} }

type drv struct{}

func (drv) Open(string) (driver.Conn, error) { return nil, errors.New("fakedb: use Open") }

type conn struct{ f *DB }

func (c *conn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fakedb: no Prepare") }
func (c *conn) Close() error                        { return nil }
func (c *conn) Begin() (driver.Tx, error)           { return c.BeginTx(context.Background(), driver.TxOptions{}) }

func (c *conn) BeginTx(_ context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.f.mu.Lock()
	c.f.log = append(c.f.log, beginText(opts))
	c.f.calls.Begin++
	n, hook := c.f.calls.Begin, c.f.hooks.Begin
	c.f.mu.Unlock()
	if hook != nil {
		if err := hook(n); err != nil {
			return nil, err
		}
	}
	return &tx{f: c.f}, nil
}

func (c *conn) ExecContext(_ context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.f.mu.Lock()
	c.f.calls.Exec++
	c.f.log = append(c.f.log, query)
	srv := c.f.hooks.Server
	c.f.mu.Unlock()
	if srv != nil {
		return srv.exec(query, args)
	}
	return driver.RowsAffected(1), nil
}

func (c *conn) QueryContext(_ context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.f.record(query)
	c.f.mu.Lock()
	srv := c.f.hooks.Server
	c.f.mu.Unlock()
	if srv == nil {
		return nil, errors.New("fakedb: no Server to answer " + query)
	}
	return srv.query(query, args)
}

type tx struct{ f *DB }

func (t *tx) Commit() error {
	t.f.mu.Lock()
	t.f.log = append(t.f.log, "COMMIT")
	t.f.calls.Commit++
	n, hook := t.f.calls.Commit, t.f.hooks.Commit
	t.f.mu.Unlock()
	if hook != nil {
		return hook(n)
	}
	return nil
}

func (t *tx) Rollback() error {
	t.f.mu.Lock()
	t.f.log = append(t.f.log, "ROLLBACK")
	t.f.calls.Rollback++
	n, hook := t.f.calls.Rollback, t.f.hooks.Rollback
	t.f.mu.Unlock()
	if hook != nil {
		return hook(n)
	}
	return nil
}

// ServerError is an error "from the server" with a class, as a real
// driver's error would carry a code.
type ServerError struct {
	Class dialect.Class
	Code  string
}

func (e *ServerError) Error() string { return "fakedb: server says " + e.Class.String() }

// Dialect classifies ServerError by its class and everything else as the
// real dialects do for errors that did not come from the server.
type Dialect struct{}

var _ dialect.Dialect = Dialect{}

func (Dialect) Name() string                                  { return "fake" }
func (Dialect) Server() string                                { return "fake" }
func (Dialect) Features() dialect.Features                    { return dialect.Features(dialect.Savepoints) }
func (Dialect) Detect(context.Context, dialect.Querier) error { return nil }
func (Dialect) Quote(table string) (string, error) {
	return dialect.IdentRules{Quote: '"'}.QuoteQualified(table)
}
func (Dialect) QuoteIdent(name string) (string, error) {
	return dialect.IdentRules{Quote: '"'}.QuoteIdent(name)
}
func (Dialect) Placeholder(int) string { return "?" }

func (Dialect) Classify(err error) *dialect.Error {
	if err == nil {
		return nil
	}
	var se *ServerError
	if errors.As(err, &se) {
		return &dialect.Error{Class: se.Class, Code: se.Code, Err: err}
	}
	if e := dialect.ClassifyCommon(err); e != nil {
		return e
	}
	if dialect.IsUnreachable(err) {
		return &dialect.Error{Class: dialect.ClassUnavailable, Err: err}
	}
	if dialect.IsNetworkError(err) {
		return &dialect.Error{Class: dialect.ClassConnection, Err: err}
	}
	return &dialect.Error{Class: dialect.ClassOther, Err: err}
}
