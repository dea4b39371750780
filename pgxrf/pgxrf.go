package pgxrf

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/pgdialect"
)

// New makes a racefree DB over a pgx pool. It reads the server's version
// (PostgreSQL or CockroachDB); ctx governs that. The DB is safe for
// concurrent use, like the pool; closing it leaves the pool open: the pool
// stays yours. opts configure the DB as racefree.New's do
// (racefree.WithObserver).
func New(ctx context.Context, pool *pgxpool.Pool, opts ...racefree.DBOption) (*racefree.DB, error) {
	if pool == nil {
		return nil, errors.New("pgxrf: new: nil *pgxpool.Pool")
	}
	return racefree.NewSession(ctx, newPool(pool), pgdialect.New(), opts...)
}

// NewConn makes a racefree DB over one pgx connection, for programs that
// hold a *pgx.Conn rather than a pool. Like the connection, the DB is for
// one goroutine at a time: every statement racefree runs, a transaction's
// and a "pooled" one alike, runs on this connection, and db.Conn hands out
// the connection itself. When racefree can no longer tell whether the
// connection holds a session lock (see racefree.AcquireSessionLock), it closes
// the connection so that the server releases the lock; the DB is unusable
// afterwards. ctx governs the version read; closing the DB leaves the
// connection open. opts are New's.
func NewConn(ctx context.Context, conn *pgx.Conn, opts ...racefree.DBOption) (*racefree.DB, error) {
	if conn == nil {
		return nil, errors.New("pgxrf: new: nil *pgx.Conn")
	}
	return racefree.NewSession(ctx, newConnPool(conn), pgdialect.New(), opts...)
}

// WrapTx returns racefree's handle on a pgx transaction, for racefree's
// verbs to run in it.
//
// Inside [RunInTx], pass the transaction fn received and nil options: the
// handle is the one RunInTx runs, which knows the isolation level and
// numbers its savepoints.
//
// For a transaction you began yourself on db's pool, pass the options you
// gave BeginTx, or nil if you do not know them: racefree uses the
// isolation level to choose how to recover from a lost race, and when it
// is unknown it assumes the strictest case that still lets it work.
// racefree never commits or rolls back a transaction it did not begin.
// Like the pgx.Tx, the handle is for one goroutine at a time.
func WrapTx(db *racefree.DB, tx pgx.Tx, opts *pgx.TxOptions) *racefree.Tx {
	if rt, ok := tx.(*runTx); ok && (db == nil || rt.rf.DB() == db) {
		return rt.rf
	}
	if tx == nil || db == nil {
		// A handle every verb refuses with a clear error.
		return db.WrapSessionTx(nil, nil)
	}
	return db.WrapSessionTx(newTxSession(tx), sqlOptions(opts))
}

// TxFunc is the body of a transaction run by [RunInTx]. As with
// racefree.TxFunc, it must return every database error it meets, wrapped
// with %w if at all: RunInTx decides whether to retry by classifying it.
type TxFunc func(ctx context.Context, tx pgx.Tx) error

// RunInTx is racefree.RunInTx with a function that receives the pgx.Tx:
// it begins a transaction on ex (a DB made by New or NewConn, a
// *racefree.Conn of one, or a *racefree.Tx for a nested savepoint), runs
// fn, commits, and retries the whole transaction on serialization
// failures, deadlocks and connections that failed before anything was
// sent, with the same budgets, backoff and error classes.
//
// Hand tx to code written for pgx (sqlc's queries.WithTx(tx)); run
// racefree's verbs on WrapTx(db, tx, nil). fn must not commit or roll
// back tx: its Commit and Rollback return an error and do nothing
// (return an error from fn to roll back). A panic in fn rolls back and
// panics again.
func RunInTx(ctx context.Context, ex racefree.Executor, opts racefree.TxOptions, fn TxFunc) error {
	if fn == nil {
		return errors.New("pgxrf: run transaction: nil function")
	}
	if err := checkPgx(ex); err != nil {
		return err
	}
	return racefree.RunInTx(ctx, ex, opts, func(ctx context.Context, tx *racefree.Tx) error {
		s, ok := tx.Session().(*txSession)
		if !ok {
			return errNotPgx
		}
		return fn(ctx, &runTx{Tx: s.tx, rf: tx})
	})
}

var errNotPgx = errors.New("pgxrf: run transaction: the executor is not over pgx (make the DB with pgxrf.New or pgxrf.NewConn)")

// checkPgx refuses, before anything begins, an executor whose session is
// not one of pgxrf's. A nil executor is left to racefree.RunInTx, which
// names the problem.
func checkPgx(ex racefree.Executor) error {
	var s any
	switch e := ex.(type) {
	case *racefree.DB:
		if e == nil {
			return nil
		}
		s = e.Session()
	case *racefree.Conn:
		if e == nil {
			return nil
		}
		s = e.Session()
	case *racefree.Tx:
		if e == nil {
			return nil
		}
		s = e.Session()
	default:
		return nil
	}
	switch s.(type) {
	case nil, *pool, *connPool, *poolConn, *pinnedConn, *txSession:
		return nil
	}
	return errNotPgx
}

// runTx is the pgx.Tx RunInTx hands to its function: the transaction
// itself, refusing to be committed or rolled back from inside, and
// carrying racefree's handle for WrapTx.
type runTx struct {
	pgx.Tx
	rf *racefree.Tx
}

var _ pgx.Tx = (*runTx)(nil)

var (
	errCommitInside   = errors.New("pgxrf: commit: RunInTx commits the transaction when its function returns nil; do not commit it inside")
	errRollbackInside = errors.New("pgxrf: roll back: RunInTx rolls the transaction back when its function returns an error; return one instead")
)

// Commit refuses: RunInTx commits.
func (t *runTx) Commit(context.Context) error { return errCommitInside }

// Rollback refuses: RunInTx rolls back when fn returns an error.
func (t *runTx) Rollback(context.Context) error { return errRollbackInside }
