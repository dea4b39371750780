package serve

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/racefree/racefree"
)

// transferRequest is the body of POST /api/transfer/{mode}: move amount
// from account From to account To (accounts 1 and 2).
type transferRequest struct {
	From   int64 `json:"from"`
	To     int64 `json:"to"`
	Amount int64 `json:"amount"`
}

func (t transferRequest) check() error {
	switch {
	case t.From != 1 && t.From != 2:
		return badf(http.StatusBadRequest, "from must be account 1 or 2, got %d", t.From)
	case t.To != 1 && t.To != 2:
		return badf(http.StatusBadRequest, "to must be account 1 or 2, got %d", t.To)
	case t.From == t.To:
		return badf(http.StatusBadRequest, "from and to are both account %d: a transfer needs two accounts", t.From)
	case t.Amount < 1 || t.Amount > MaxAmount:
		return badf(http.StatusBadRequest, "amount must be between 1 and %d, got %d", MaxAmount, t.Amount)
	}
	return nil
}

// transferAnswer is one transfer's outcome: done, or declined for want of
// funds.
type transferAnswer struct {
	Mode   string  `json:"mode"`
	From   int64   `json:"from"`
	To     int64   `json:"to"`
	Amount int64   `json:"amount"`
	Done   bool    `json:"done"`
	PID    int     `json:"pid"`
	MS     float64 `json:"ms"`
}

// handleTransfer is POST /api/transfer/{naive|racefree}.
func (a *App) handleTransfer(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	mode, err := checkMode(r)
	if err != nil {
		writeBad(w, err)
		return
	}
	var req transferRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeBad(w, err)
		return
	}
	if err := req.check(); err != nil {
		writeBad(w, err)
		return
	}
	var done bool
	if mode == "naive" {
		done, err = a.naiveTransfer(r.Context(), req)
	} else {
		done, err = a.racefreeTransfer(r.Context(), req)
	}
	if err != nil {
		a.fail(w, r, mode+" transfer", err)
		return
	}
	writeJSON(w, http.StatusOK, transferAnswer{
		Mode: mode, From: req.From, To: req.To, Amount: req.Amount, Done: done,
		PID: pid, MS: float64(time.Since(began).Microseconds()) / 1000,
	})
}

// naiveTransfer is a transfer as people write it: read both balances,
// check the funds, write both new balances. Two transfers that read before
// either writes each write balances computed from what they read, and the
// later write erases the earlier: transfers are lost, and when the last
// write to one account and the last to the other come from different
// transfers, money appears or vanishes. The think time, before each write,
// stands for the work a handler does between the statements (another
// query, a log line, a call to another service); it lets the two writes of
// concurrent transfers interleave as they do on a loaded server.
func (a *App) naiveTransfer(ctx context.Context, t transferRequest) (bool, error) {
	sel := a.q("SELECT balance FROM " + a.t.qNaiveAccounts + " WHERE id = ?")
	var from, to int64
	if err := a.db.SQL().QueryRowContext(ctx, sel, t.From).Scan(&from); err != nil {
		return false, err
	}
	if err := a.db.SQL().QueryRowContext(ctx, sel, t.To).Scan(&to); err != nil {
		return false, err
	}
	if from < t.Amount {
		return false, nil
	}
	upd := a.q("UPDATE " + a.t.qNaiveAccounts + " SET balance = ? WHERE id = ?")
	for _, w := range []struct{ id, balance int64 }{{t.From, from - t.Amount}, {t.To, to + t.Amount}} {
		if err := a.think(ctx); err != nil {
			return false, err
		}
		if _, err := a.db.SQL().ExecContext(ctx, upd, w.balance, w.id); err != nil {
			return false, err
		}
	}
	return true, nil
}

// racefreeTransfer is the transfer README shows: racefree.Transfer, one
// statement where the engine allows it, that locks both accounts in key
// order (so 1→2 and 2→1 cannot deadlock each other) and debits only what
// the floor (0) allows, checked on the locked balance; retried on
// deadlocks, serialization failures and busy errors. A transfer the floor
// declines moves nothing and is reported as not done. It has no place
// between a read and a write for a pause, and needs none, so it waits the
// naive transfer's two think times before the call: each request takes as
// long as its naive twin, holding no lock while it waits.
func (a *App) racefreeTransfer(ctx context.Context, t transferRequest) (bool, error) {
	for range 2 {
		if err := a.think(ctx); err != nil {
			return false, err
		}
	}
	err := racefree.Transfer(ctx, a.db, a.t.accounts, "balance", t.From, t.To, t.Amount, racefree.TransferOptions{})
	if errors.Is(err, racefree.ErrBelowFloor) {
		return false, nil // insufficient funds: a declined transfer
	}
	return err == nil, err
}

// stateAnswer is GET /api/transfer/state: both accounts of both tables.
type stateAnswer struct {
	Naive    accounts `json:"naive"`
	Racefree accounts `json:"racefree"`
	Initial  int64    `json:"initial_total"`
	PID      int      `json:"pid"`
}

type accounts struct {
	Balances [2]int64 `json:"balances"` // accounts 1 and 2
	Total    int64    `json:"total"`
}

// handleState is GET /api/transfer/state.
func (a *App) handleState(w http.ResponseWriter, r *http.Request) {
	ans := stateAnswer{Initial: 2 * InitialBalance, PID: pid}
	for _, c := range []struct {
		table string
		dst   *accounts
	}{{a.t.qNaiveAccounts, &ans.Naive}, {a.t.qAccounts, &ans.Racefree}} {
		rows, err := a.db.SQL().QueryContext(r.Context(), "SELECT id, balance FROM "+c.table+" WHERE id IN (1, 2)")
		if err != nil {
			a.fail(w, r, "read balances", err)
			return
		}
		for rows.Next() {
			var id, b int64
			if err = rows.Scan(&id, &b); err != nil {
				break
			}
			c.dst.Balances[id-1] = b
			c.dst.Total += b
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
		if err != nil {
			a.fail(w, r, "read balances", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, ans)
}
