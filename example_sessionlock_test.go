package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/pgdialect"
)

// Session locks need a server (SQLite has none: see AcquireSessionLock's
// example), so these examples are compiled, not run.

// Release gives the lock back as soon as the work is done; deferring it as
// well covers the early returns, since a second Release does nothing.
func ExampleSessionLock_Release() {
	ctx := context.Background()
	db, err := racefree.Open(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	lock, err := racefree.AcquireSessionLock(ctx, db, "migrations", racefree.LockOptions{Wait: racefree.Wait{Timeout: time.Minute}})
	if err != nil {
		log.Fatal(err) // errors.Is(err, racefree.ErrLockNotAcquired): another runner is at it
	}
	defer lock.Release(ctx)
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"); err != nil {
		log.Fatal(err)
	}
	if err := lock.Release(ctx); errors.Is(err, racefree.ErrLockLost) {
		log.Print("the lock was lost on the way: the work ran unprotected")
	}
}

// Check before an action that must not run without the lock: it asks the
// server, so it notices a session that ended under the holder.
func ExampleSessionLock_Check() {
	ctx := context.Background()
	db, err := racefree.Open(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	lock, err := racefree.AcquireSessionLock(ctx, db, "report-mailer", racefree.LockOptions{Wait: racefree.Wait{Try: true}})
	if errors.Is(err, racefree.ErrLockNotAcquired) {
		return // another instance is the mailer
	}
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Release(ctx)
	for _, to := range []string{"ada@example.com", "alan@example.com"} {
		if err := lock.Check(ctx); err != nil {
			log.Fatal(err) // racefree.ErrLockLost: another instance may be mailing now
		}
		fmt.Println("mail report to", to)
	}
}

// Do runs long work under the lock and cancels it the moment the lock is
// lost; context.Cause says why.
func ExampleSessionLock_Do() {
	ctx := context.Background()
	db, err := racefree.Open(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	lock, err := racefree.AcquireSessionLock(ctx, db, "reindex", racefree.LockOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Release(ctx)
	err = lock.Do(ctx, func(ctx context.Context) error {
		// The statement's context is canceled if the lock's session ends.
		_, err := db.SQL().ExecContext(ctx, "REINDEX TABLE users")
		if errors.Is(context.Cause(ctx), racefree.ErrLockLost) {
			return fmt.Errorf("reindex stopped: %w", context.Cause(ctx))
		}
		return err
	})
	fmt.Println(err)
}

// Name returns the name the lock was taken under, for logs.
func ExampleSessionLock_Name() {
	ctx := context.Background()
	db, err := racefree.Open(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	lock, err := racefree.AcquireSessionLock(ctx, db, "nightly-export", racefree.LockOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Release(ctx)
	log.Printf("holding %q", lock.Name())
}
