package lab

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/racefree/racefree"
)

// The transfer scenario's racefree strategy writes each transfer it
// applies to a ledger, in the same transaction, under an idempotency key
// unique to the call. The ledger has no unique index on the key, on
// purpose: a transfer applied twice — a transaction run again after its
// COMMIT had in fact landed, by the library or by its caller — leaves two
// rows with one key, which the check counts. (A unique index would turn
// the second application into an error and hide it.)

// LedgerTable names the ledger of a transfer run.
func LedgerTable(spec *Spec) string { return spec.Table + "_ledger" }

// OnceTable names the key table of racefree.RunOnce in a transfer run.
func OnceTable(spec *Spec) string { return spec.Table + "_once" }

// Events the racefree transfer notes when a COMMIT's outcome is unknown:
// it reads the ledger, as a careful caller would, and runs the transfer
// again (same key) only when it finds no record.
const (
	EventUnknownCommitted  = "unknown commit: found in the ledger (had committed)"
	EventUnknownRetried    = "unknown commit: not in the ledger (had not committed), run again"
	EventUnknownRetryError = "unknown commit: the run again failed"
	EventUnknownUnresolved = "unknown commit: ledger unreadable, left unresolved"
)

// idemKey returns a key no other call of the run uses.
func (w *worker) idemKey() string {
	w.seq++
	return w.id + "-" + strconv.FormatInt(w.seq, 10)
}

// rfTransfer runs the transfer through racefree.RunOnce under an
// idempotency key unique to the call, so that it is applied exactly once:
// RunOnce writes the key in the transaction, runs the transaction again
// after a COMMIT whose answer was lost, and the key says whether the lost
// one had landed. Inside, racefree.Transfer moves the amount as README
// recommends — one statement that locks both accounts in key order and
// debits only what the floor allows where the engine has one, the fewest
// statements elsewhere — and the transfer is recorded in the ledger.
// Should an unknown outcome still reach the caller (RunOnce's budget spent
// while the server was away), the error is counted, and the lab settles it
// through the ledger as a careful caller would.
func rfTransfer(ctx context.Context, w *worker, from, to, amount int64) error {
	key := w.idemKey()
	err := rfTransferOnce(ctx, w, key, from, to, amount)
	if errors.Is(err, racefree.ErrCommitUnknown) {
		w.resolveUnknown(ctx, key, from, to, amount)
	}
	return err
}

func rfTransferOnce(ctx context.Context, w *worker, key string, from, to, amount int64) error {
	_, _, err := racefree.RunOnce(ctx, w.db, key, racefree.OnceOptions{Table: OnceTable(w.spec)}, func(ctx context.Context, tx *racefree.Tx) (struct{}, error) {
		return struct{}{}, rfTransferBody(ctx, w, tx, key, from, to, amount)
	})
	return err
}

// rfTransferBody is the transfer's transaction. A transfer the floor
// declines moves nothing and leaves no ledger row.
func rfTransferBody(ctx context.Context, w *worker, tx *racefree.Tx, key string, from, to, amount int64) error {
	err := racefree.Transfer(ctx, tx, w.spec.Table, "balance", from, to, amount, racefree.TransferOptions{})
	if errors.Is(err, racefree.ErrBelowFloor) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, w.ql("INSERT INTO {l} (idem_key, from_id, to_id, amount) VALUES (?, ?, ?, ?)"), key, from, to, amount)
	return err
}

// resolveUnknown settles a transfer whose COMMIT's outcome was unknown:
// found in the ledger, it had committed; absent, it had not, and it is run
// again with the same key (a declined transfer leaves no record either, so
// running it again is what its caller would do). The outcome is counted as
// an event.
func (w *worker) resolveUnknown(ctx context.Context, key string, from, to, amount int64) {
	for range 3 {
		n, err := w.ledgerCount(ctx, key)
		if err != nil {
			w.event(EventUnknownUnresolved)
			return
		}
		if n > 0 {
			w.event(EventUnknownCommitted)
			return
		}
		w.event(EventUnknownRetried)
		err = rfTransferOnce(ctx, w, key, from, to, amount)
		if err == nil {
			return
		}
		if !errors.Is(err, racefree.ErrCommitUnknown) {
			w.event(EventUnknownRetryError)
			return
		}
	}
	w.event(EventUnknownUnresolved)
}

// ledgerCount counts the ledger rows of key, retrying while the server is
// unreachable, within ctx.
func (w *worker) ledgerCount(ctx context.Context, key string) (int64, error) {
	for {
		var n int64
		err := w.sql.QueryRowContext(ctx, w.ql("SELECT COUNT(*) FROM {l} WHERE idem_key = ?"), key).Scan(&n)
		if err == nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ql is q with {l} standing for the ledger table.
func (w *worker) ql(query string) string {
	if s, ok := w.cache[query]; ok {
		return s
	}
	l, err := w.d.Quote(LedgerTable(w.spec))
	if err != nil {
		l = LedgerTable(w.spec) // lab-made name: always valid
	}
	s := w.q(strings.ReplaceAll(query, "{l}", l))
	w.cache[query] = s
	return s
}

// LedgerVerdict is what the ledger says after a transfer run.
type LedgerVerdict struct {
	// Transfers counts ledger rows.
	Transfers int64
	// AppliedTwice counts rows beyond the first per idempotency key.
	AppliedTwice int64
	// Mismatched counts accounts whose balance is not the initial balance
	// plus what the ledger says came in, less what went out.
	Mismatched int64
}

// CheckLedger reads the ledger of a transfer run.
func CheckLedger(ctx context.Context, db Querier, spec *Spec) (LedgerVerdict, error) {
	var v LedgerVerdict
	t, l := spec.Table, LedgerTable(spec)
	err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE((SELECT SUM(c - 1) FROM (SELECT COUNT(*) AS c FROM "+l+
		" GROUP BY idem_key HAVING COUNT(*) > 1) d), 0) FROM "+l).Scan(&v.Transfers, &v.AppliedTwice)
	if err != nil {
		return v, fmt.Errorf("check ledger %s: %w", l, err)
	}
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t+" a WHERE a.balance <> "+strconv.Itoa(InitialBalance)+
		" - COALESCE((SELECT SUM(amount) FROM "+l+" o WHERE o.from_id = a.id), 0)"+
		" + COALESCE((SELECT SUM(amount) FROM "+l+" i WHERE i.to_id = a.id), 0)").Scan(&v.Mismatched)
	if err != nil {
		return v, fmt.Errorf("check ledger %s: %w", l, err)
	}
	return v, nil
}
