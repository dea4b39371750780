package racefree_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/racefree/racefree"
)

// observerFunc is a function as a racefree.Observer.
type observerFunc func(ctx context.Context, e racefree.Event)

// Observe calls f.
func (f observerFunc) Observe(ctx context.Context, e racefree.Event) { f(ctx, e) }

// An Observer sees every retry of a transaction and its end; a metrics
// exporter counts them by Kind and Class. Here another writer holds
// SQLite's write lock through the three attempts the policy allows.
func ExampleWithObserver() {
	ctx := context.Background()
	logEvent := observerFunc(func(_ context.Context, e racefree.Event) {
		fmt.Println(e.Kind, e.Attempt, e.Class)
	})
	db, cleanup := mustBusyExampleDB(ctx, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)",
		racefree.WithObserver(logEvent))
	defer cleanup()
	release := holdWriteLock(ctx, db)
	defer release()

	_ = racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.Backoff{MaxAttempts: 3}}, func(ctx context.Context, tx *racefree.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO jobs (state) VALUES ('queued')")
		return err
	})
	// Output:
	// tx retry 1 busy
	// tx retry 2 busy
	// tx gave up 3 busy
}

// Log racefree's events with log/slog: retries at Info, giving up at Warn.
// (The handler drops the time and the random pause, for a stable output.)
func ExampleSlogObserver() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "racefree.delay" {
				return slog.Attr{}
			}
			return a
		},
	}))
	db, cleanup := mustBusyExampleDB(ctx, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)",
		racefree.WithObserver(racefree.SlogObserver(logger)))
	defer cleanup()
	release := holdWriteLock(ctx, db)
	defer release()

	_ = racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.Backoff{MaxAttempts: 2}}, func(ctx context.Context, tx *racefree.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO jobs (state) VALUES ('queued')")
		return err
	})
	// Output:
	// level=INFO msg="racefree: tx retry" racefree.event="tx retry" db.system=sqlite racefree.attempt=1 error.type=busy error="racefree: begin transaction: database is locked (5) (SQLITE_BUSY)"
	// level=WARN msg="racefree: tx gave up" racefree.event="tx gave up" db.system=sqlite racefree.attempt=2 error.type=busy error="racefree: begin transaction: database is locked (5) (SQLITE_BUSY)"
}
