package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// poolerRounds is how many times the doctor looks for a transaction-pooling
// proxy; poolerWait how long one of its statements may wait for a server
// session before that wait itself is the answer.
const (
	poolerRounds = 5
	poolerWait   = 2 * time.Second
)

// poolerVerdict is what the doctor found about the way to the server.
type poolerVerdict struct {
	pooled bool   // a transaction-pooling proxy sits in front
	why    string // the evidence, in plain words
}

// findPooler tells whether the server sessions behind racefree's
// connections are pinned to them, as session locks need, or handed out per
// transaction by a proxy (PgBouncer in transaction mode, ProxySQL's
// multiplexing), which silently breaks session locks. It holds two client
// connections, A and B, and in each round reads A's server session, then
// begins a transaction on B and reads B's, then reads A's again. With
// sessions pinned, A's is its own: B never gets it and it never changes.
// Behind such a proxy A's session goes back to the proxy's pool after each
// statement, so B may be given it, or A another one — or A must wait
// while B's transaction holds the proxy's only server session, which is
// proof too. It returns ok false when the engine cannot tell (no session
// ids: SQLite).
func findPooler(ctx context.Context, db *racefree.DB) (v poolerVerdict, ok bool, err error) {
	si, ok := db.Dialect().(dialect.SessionIdentifier)
	if !ok {
		return v, false, nil
	}
	query := si.SessionIDSQL()
	a, err := db.Conn(ctx)
	if err != nil {
		return v, true, fmt.Errorf("look for a pooler: take a connection: %w", err)
	}
	defer a.Close()
	b, err := db.Conn(ctx)
	if err != nil {
		return v, true, fmt.Errorf("look for a pooler: take a second connection: %w", err)
	}
	defer b.Close()
	id := func(q session.Querier) (int64, error) {
		var n int64
		err := q.QueryRow(ctx, query).Scan(&n)
		return n, err
	}
	for range poolerRounds {
		a1, err := id(a.Session())
		if err != nil {
			return v, true, fmt.Errorf("look for a pooler: read the session id: %w", err)
		}
		tx, err := b.Session().Begin(ctx, sql.TxOptions{})
		if err != nil {
			return v, true, fmt.Errorf("look for a pooler: begin: %w", err)
		}
		bid, err := id(tx)
		if err != nil {
			_ = tx.Rollback(ctx)
			return v, true, fmt.Errorf("look for a pooler: read the session id in a transaction: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, poolerWait)
		var a2 int64
		err = a.Session().QueryRow(wctx, query).Scan(&a2)
		waited := wctx.Err() != nil
		cancel()
		_ = tx.Rollback(ctx)
		switch {
		case waited:
			return poolerVerdict{true, fmt.Sprintf("a statement on one connection waited %v for a server session while a transaction on another held one", poolerWait)}, true, nil
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return v, true, fmt.Errorf("look for a pooler: read the session id again: %w", err)
		case bid == a1:
			return poolerVerdict{true, fmt.Sprintf("server session %d ran one connection's statement, then another connection's transaction", a1)}, true, nil
		case a2 != a1:
			return poolerVerdict{true, fmt.Sprintf("one connection's statements ran on server sessions %d, then %d", a1, a2)}, true, nil
		}
	}
	return poolerVerdict{false, fmt.Sprintf("each connection kept its own server session over %d rounds", poolerRounds)}, true, nil
}

// poolerLine says what the verdict means for racefree's locks.
func (v poolerVerdict) line() string {
	if !v.pooled {
		return "sessions are pinned to connections (" + v.why + "): session locks (AcquireSessionLock) hold"
	}
	return "WARNING: a transaction-pooling proxy (PgBouncer in transaction mode, or alike) is in front: " + v.why +
		". Session locks (AcquireSessionLock, SessionLock.Do) would be taken and released on whichever server session is free, " +
		"excluding nobody or the wrong client, with no error: use LockNamed inside a transaction, or AcquireLease. " +
		"Everything racefree does inside one transaction (RunInTx, the get-or-create family, LockNamed, LockRows, leases) is unaffected"
}
