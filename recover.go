package racefree

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/racefree/racefree/dialect"
)

// retryIdempotent runs again, on the pool, a read or an idempotent
// statement (CREATE TABLE IF NOT EXISTS) that failed with err: running it
// twice changes nothing, so a lost connection under it is as safe to run
// again as one that never sent it, and an outage is waited out. It
// returns nil once read succeeds, err itself when err is no such failure,
// and the last failure when the default retry budget (or ctx) ends.
func (db *DB) retryIdempotent(ctx context.Context, err error, read func(context.Context) error) error {
	if err == nil || !db.lostOrRetryable(err) {
		return err
	}
	return db.retryAfter(ctx, nil, time.Now(), &retrySafeError{err}, func(ctx context.Context) error {
		err := read(ctx)
		if err != nil && db.lostOrRetryable(err) {
			return &retrySafeError{err}
		}
		return err
	})
}

// lostOrRetryable reports whether err is a lost connection or a
// retryable class, never an unknown commit.
func (db *DB) lostOrRetryable(err error) bool {
	if errors.Is(err, ErrCommitUnknown) || errors.As(err, new(*RetryError)) {
		return false
	}
	c := db.d.Classify(err).Class
	return c.Retryable() || c == dialect.ClassConnection
}

// onPool reports whether q is the DB's pool itself, where every statement
// commits on its own and may take any connection.
func (db *DB) onPool(q dialect.Querier) bool {
	// == on two interfaces holding one non-comparable type panics.
	t := reflect.TypeOf(q)
	return t == reflect.TypeOf(db.pool) && t.Comparable() && q == dialect.Querier(db.pool)
}

// classifyCtx classifies err, as canceled when ctx has ended and err is a
// connection failure: a statement refused because ctx had ended comes
// back from pgx's database/sql driver as driver.ErrBadConn, and one
// canceled in flight may close the connection; alone, either would not
// tell the caller why.
func (db *DB) classifyCtx(ctx context.Context, err error) *dialect.Error {
	ce := db.d.Classify(err)
	if ce != nil && ctx.Err() != nil && ce.Class.Outage() {
		return &dialect.Error{Class: dialect.ClassCanceled, Err: errors.Join(ctx.Err(), err)}
	}
	return ce
}
