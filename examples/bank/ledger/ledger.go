// Package ledger is the bank of racefree's examples/bank program: accounts
// whose balances move only by transfers that are correct under any
// concurrency.
//
// A transfer is racefree.Transfer: one statement where the engine allows
// it, which locks both accounts in ascending id order whatever the
// direction (so A→B and B→A transfers never deadlock), checks the balance
// on the locked row and moves the amount, both rows or neither. With an
// idempotency key it runs in a transaction that first records the key (a
// primary key), so that a transfer retried after its commit outcome was
// lost is applied once.
//
// racefree retries what can be retried (a SQLite busy error, a deadlock
// with other code, a serialization failure on engines that raise them).
package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/racefree/racefree"
)

// Errors a transfer can end with besides database errors.
var (
	ErrInsufficientFunds = errors.New("ledger: insufficient funds")
	ErrNoSuchAccount     = errors.New("ledger: no such account")
	ErrSameAccount       = errors.New("ledger: transfer to the same account")
	ErrBadAmount         = errors.New("ledger: amount must be positive")
)

// Ledger is a set of accounts in one database. It is safe for concurrent
// use: all state is in the database.
type Ledger struct {
	DB *racefree.DB
	// Accounts and Transfers name the two tables.
	Accounts, Transfers string
	// TxOptions configure each transfer's transaction (its retry policy,
	// which may also count retries for metrics). The zero value is
	// RunInTx's default.
	TxOptions racefree.TxOptions
}

// Create creates the tables if they do not exist and opens accounts 1..n
// with balance each (existing accounts are left alone).
func (l *Ledger) Create(ctx context.Context, n int, balance int64) error {
	d := l.DB.Dialect()
	acc, err := d.Quote(l.Accounts)
	if err != nil {
		return fmt.Errorf("ledger: create: %w", err)
	}
	trf, err := d.Quote(l.Transfers)
	if err != nil {
		return fmt.Errorf("ledger: create: %w", err)
	}
	keyType := "TEXT"
	if d.Name() == "mysql" {
		keyType = "VARCHAR(191)"
	}
	for _, ddl := range []string{
		// The CHECK is the second line of defence: the conditional debit
		// is the first.
		"CREATE TABLE IF NOT EXISTS " + acc + " (id BIGINT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))",
		"CREATE TABLE IF NOT EXISTS " + trf + " (idem_key " + keyType + " NOT NULL PRIMARY KEY, from_id BIGINT NOT NULL, to_id BIGINT NOT NULL, amount BIGINT NOT NULL)",
	} {
		if _, err := l.DB.SQL().ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("ledger: create: %w", l.DB.Classify(err))
		}
	}
	// One statement per account that leaves an existing one alone, so that
	// two programs creating the same ledger at once do not collide.
	insert := "INSERT INTO " + acc + " (id, balance) VALUES (" + d.Placeholder(1) + ", " + d.Placeholder(2) + ")"
	if d.Name() == "mysql" {
		insert += " ON DUPLICATE KEY UPDATE id = id"
	} else {
		insert += " ON CONFLICT (id) DO NOTHING"
	}
	return racefree.RunInTx(ctx, l.DB, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		for id := int64(1); id <= int64(n); id++ {
			if _, err := tx.ExecContext(ctx, insert, id, balance); err != nil {
				return err
			}
		}
		return nil
	})
}

// Transfer moves amount from one account to another and reports whether
// it did so now (false: the transfer with this key was applied before).
// key is the idempotency key: a caller that got an error of class
// racefree.ErrCommitUnknown, or any error it cannot be sure of, calls
// Transfer again with the same key and the transfer is applied once. An
// empty key makes the transfer not idempotent, and one statement.
func (l *Ledger) Transfer(ctx context.Context, key string, from, to, amount int64) (applied bool, err error) {
	if key == "" {
		if err := checkTransfer(from, to, amount); err != nil {
			return false, err
		}
		err := racefree.Transfer(ctx, l.DB, l.Accounts, "balance", from, to, amount,
			racefree.TransferOptions{Retry: l.TxOptions.Retry})
		if err != nil {
			return false, transferError(err)
		}
		return true, nil
	}
	err = racefree.RunInTx(ctx, l.DB, l.TxOptions, func(ctx context.Context, tx *racefree.Tx) error {
		var err error
		applied, err = l.TransferTx(ctx, tx, key, from, to, amount)
		return err
	})
	return applied, err
}

// TransferTx is Transfer inside a transaction of the caller's, which it
// neither commits nor rolls back. On an error the caller must roll back:
// the idempotency key may already be recorded.
func (l *Ledger) TransferTx(ctx context.Context, tx *racefree.Tx, key string, from, to, amount int64) (applied bool, err error) {
	if err := checkTransfer(from, to, amount); err != nil {
		return false, err
	}
	d := l.DB.Dialect()
	ph := d.Placeholder
	if key != "" {
		trf, err := d.Quote(l.Transfers)
		if err != nil {
			return false, fmt.Errorf("ledger: transfer: %w", err)
		}
		// First, so that a duplicate moves nothing. A concurrent call with
		// the same key waits here for the first one's outcome. PostgreSQL
		// and SQLite skip a duplicate with ON CONFLICT (a failed INSERT
		// would abort a PostgreSQL transaction); MySQL reports it as an
		// error that leaves the transaction usable. INSERT IGNORE would
		// turn every other error into a warning too.
		insert := "INSERT INTO " + trf + " (idem_key, from_id, to_id, amount) VALUES (" + ph(1) + ", " + ph(2) + ", " + ph(3) + ", " + ph(4) + ")"
		if d.Name() != "mysql" {
			insert += " ON CONFLICT (idem_key) DO NOTHING"
		}
		res, err := tx.ExecContext(ctx, insert, key, from, to, amount)
		if err != nil {
			if errors.Is(l.DB.Classify(err), racefree.ErrUniqueViolation) {
				return false, nil
			}
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n == 0 {
			return false, nil
		}
	}
	if err := racefree.Transfer(ctx, tx, l.Accounts, "balance", from, to, amount, racefree.TransferOptions{}); err != nil {
		return false, transferError(err)
	}
	return true, nil
}

// checkTransfer refuses what no database needs to see.
func checkTransfer(from, to, amount int64) error {
	switch {
	case amount <= 0:
		return ErrBadAmount
	case from == to:
		return ErrSameAccount
	}
	return nil
}

// transferError turns racefree's refusals into the ledger's errors, and
// keeps racefree's error in the chain.
func transferError(err error) error {
	switch {
	case errors.Is(err, racefree.ErrBelowFloor):
		return fmt.Errorf("%w: %w", ErrInsufficientFunds, err)
	case errors.Is(err, racefree.ErrNoRow):
		return fmt.Errorf("%w: %w", ErrNoSuchAccount, err)
	}
	return err
}

// Totals returns the sum of all balances, the smallest balance, and the
// number of accounts, read in one statement.
func (l *Ledger) Totals(ctx context.Context) (sum, minBalance, accounts int64, err error) {
	acc, err := l.DB.Dialect().Quote(l.Accounts)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ledger: totals: %w", err)
	}
	err = l.DB.SQL().QueryRowContext(ctx, "SELECT COALESCE(SUM(balance), 0), COALESCE(MIN(balance), 0), COUNT(*) FROM "+acc).Scan(&sum, &minBalance, &accounts)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ledger: totals: %w", l.DB.Classify(err))
	}
	return sum, minBalance, accounts, nil
}
