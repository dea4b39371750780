// Command bank runs concurrent transfers between accounts and checks that
// no money was created or destroyed: the ledger in package
// github.com/racefree/racefree/examples/bank/ledger moves money with
// racefree.Transfer, which locks both accounts in ascending id order and
// checks the balance in the database in one statement, and records an
// idempotency key so that a transfer retried after an unknown commit
// outcome is applied once.
//
//	go run ./examples/bank                                  # SQLite, a temporary file
//	go run ./examples/bank -dsn postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	go run ./examples/bank -dsn mysql://root@127.0.0.1:3306/test -workers 64
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/mysqldialect"
	_ "github.com/racefree/racefree/dialect/pgdialect"
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/examples/bank/ledger"
)

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

// run is the program as a function of its arguments and outputs.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bank", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", "", "database to use (default: a new SQLite file in a temporary directory)")
	accounts := fs.Int("accounts", 10, "number of accounts")
	balance := fs.Int64("balance", 1000, "opening balance of each account")
	workers := fs.Int("workers", 16, "concurrent workers")
	transfers := fs.Int("transfers", 50, "transfers per worker")
	prefix := fs.String("tables", "bank", "table name prefix: PREFIX_accounts and PREFIX_transfers")
	keep := fs.Bool("keep", false, "keep the tables afterwards")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *accounts < 2 || *workers < 1 || *transfers < 0 || *balance < 0 {
		fmt.Fprintln(stderr, "bank: need at least 2 accounts, 1 worker, and no negative counts")
		return 2
	}
	if *dsn == "" {
		dir, err := os.MkdirTemp("", "bank")
		if err != nil {
			fmt.Fprintln(stderr, "bank:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		*dsn = "sqlite:" + filepath.Join(dir, "bank.db")
	}
	db, err := racefree.Open(ctx, *dsn)
	if err != nil {
		fmt.Fprintln(stderr, "bank:", err)
		return 1
	}
	defer db.Close()
	l := &ledger.Ledger{DB: db, Accounts: *prefix + "_accounts", Transfers: *prefix + "_transfers"}
	if err := l.Create(ctx, *accounts, *balance); err != nil {
		fmt.Fprintln(stderr, "bank:", err)
		return 1
	}
	if !*keep {
		defer func() {
			for _, t := range []string{l.Accounts, l.Transfers} {
				_, _ = db.SQL().ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+t)
			}
		}()
	}
	before, _, _, err := l.Totals(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "bank:", err)
		return 1
	}

	var applied, declined, failed atomic.Int64
	runID := time.Now().UnixNano()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(runID), uint64(w)))
			for i := range *transfers {
				from := r.Int64N(int64(*accounts)) + 1
				to := r.Int64N(int64(*accounts)-1) + 1
				if to >= from {
					to++
				}
				key := fmt.Sprintf("%d-%d-%d", runID, w, i)
				_, err := transferWithRetry(ctx, l, key, from, to, r.Int64N(100)+1)
				switch {
				case errors.Is(err, ledger.ErrInsufficientFunds):
					declined.Add(1)
				case err != nil:
					failed.Add(1)
					fmt.Fprintf(stderr, "bank: transfer %d→%d: %v\n", from, to, err)
				default:
					applied.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	after, minBal, n, err := l.Totals(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "bank:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d workers, %d transfers applied, %d declined for funds, %d failed in %v\n",
		db.Dialect().Server(), *workers, applied.Load(), declined.Load(), failed.Load(), elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "total before %d, after %d over %d accounts; smallest balance %d\n", before, after, n, minBal)
	if after != before || minBal < 0 || failed.Load() > 0 {
		fmt.Fprintln(stdout, "INVARIANT BROKEN")
		return 1
	}
	fmt.Fprintln(stdout, "ok: money conserved, no negative balance")
	return 0
}

// transferWithRetry shows what to do when a commit's outcome is unknown:
// send the same transfer again, with the same key. The ledger applies it at
// most once, so retrying is always safe.
func transferWithRetry(ctx context.Context, l *ledger.Ledger, key string, from, to, amount int64) (bool, error) {
	for attempt := 1; ; attempt++ {
		ok, err := l.Transfer(ctx, key, from, to, amount)
		if errors.Is(err, racefree.ErrCommitUnknown) && attempt < 5 {
			continue
		}
		return ok, err
	}
}
