// Package pgxrf runs racefree on pgx v5's own API: a [*pgxpool.Pool], a
// [*pgx.Conn] and a [pgx.Tx], for programs that do not use database/sql.
// A program that does not import it does not compile it.
//
// [New] makes a *racefree.DB over a pool, and every racefree verb then
// takes it, or a transaction of it, as it takes a DB over database/sql:
//
//	db, err := pgxrf.New(ctx, pool) // the one line
//	user, created, err := racefree.GetOrCreate[User](ctx, db, "users", lookup, defaults, racefree.Options{})
//
// [RunInTx] is racefree.RunInTx whose function receives the pgx.Tx, so that
// code written for pgx — sqlc's pgx/v5 queries through their WithTx(tx),
// for one — runs inside racefree's retried transaction; racefree's verbs
// join the same transaction through [WrapTx]:
//
//	err := pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
//		q := queries.WithTx(tx)
//		rtx := pgxrf.WrapTx(db, tx, nil) // racefree's handle on the same transaction
//		…
//	})
//
// A transaction you began yourself is adopted with WrapTx as well; racefree
// never commits or rolls it back.
//
// # What is the same as over database/sql
//
// Everything racefree decides: strategies, savepoints, isolation-aware
// recovery from lost races, retries and their budgets, and the error
// classes (package pgdialect classifies pgx's errors on both paths). A
// racefree.Values row holds the values database/sql would give over pgx's
// own database/sql driver: int64 for every integer type, float64, bool,
// time.Time for dates and timestamps, []byte for bytea, and the server's
// text for the rest (numeric, uuid, json, arrays, intervals…). To get
// them, racefree's queries ask the server for those types in text format,
// as pgx's database/sql driver does; a struct field of any type pgx can
// scan into still gets its value.
//
// # What pgx adds
//
// pgx keeps a prepared statement per connection and query text, so
// racefree's statements are prepared once per connection without racefree
// preparing anything. A COMMIT that got no answer is always reported as
// racefree.ErrCommitUnknown, never as a retryable error, whatever pgx
// says about it.
//
// # Connections
//
// A *racefree.Conn from db.Conn(ctx) is a *pgxpool.Conn; when racefree can
// no longer tell whether it holds a session lock, it closes it instead of
// returning it to the pool, so that the server releases the lock. A DB made
// by [NewConn] runs on one *pgx.Conn and, like it, is for one goroutine at
// a time.
package pgxrf
