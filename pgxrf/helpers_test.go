package pgxrf_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/pgxrf"
)

// pg returns the PostgreSQL test engine, skipping tb (failing it under
// CI=true) when RACEFREE_POSTGRES_DSN's server is unreachable.
func pg(tb testing.TB) testdb.Engine {
	tb.Helper()
	e, _ := testdb.Get("postgres")
	e.Require(tb)
	return e
}

// mustPool opens a pgx pool of at most maxConns connections on dsn and
// closes it when tb ends. tracer, if not nil, sees every statement.
func mustPool(tb testing.TB, dsn string, maxConns int32, tracer pgx.QueryTracer) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("parse DSN: %v", err)
	}
	cfg.MaxConns = maxConns
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// mustPoolVia is mustPool with the connections going to host:port (a
// proxy) instead of the DSN's server.
func mustPoolVia(tb testing.TB, dsn, host, port string) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("parse DSN: %v", err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		tb.Fatalf("port %q: %v", port, err)
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.Fallbacks = nil
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// mustDB makes a racefree DB over pool.
func mustDB(tb testing.TB, pool *pgxpool.Pool, opts ...racefree.DBOption) *racefree.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pgxrf.New(ctx, pool, opts...)
	if err != nil {
		tb.Fatalf("pgxrf.New: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// open returns the engine, a database/sql DB for setting up and checking
// tables, and a pgxrf DB over a pool of maxConns connections for the work.
func open(tb testing.TB, maxConns int32) (testdb.Engine, *racefree.DB, *racefree.DB, *pgxpool.Pool) {
	tb.Helper()
	e := pg(tb)
	check := e.Open(tb)
	pool := mustPool(tb, e.DSN(tb), maxConns, nil)
	return e, check, mustDB(tb, pool), pool
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
