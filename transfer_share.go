package racefree

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racefree/racefree/dialect"
)

// Shared commits: transfers on a *DB that find one of their rows busy —
// another transfer of this process on the same table is moving an amount
// in or out of it — wait, and the transfers that waited run together in
// one transaction: it locks all their rows in key order (in one statement
// the dialect gives, else LockRows), runs each one's statement, and
// commits once. Where the dialect says commits
// are worth sharing (dialect.SharedCommits), transfers on hot rows
// otherwise take turns at one commit each: on PostgreSQL each waits for
// the log flush of the one before while it holds the row; sharing the
// flush moves several per turn. On an engine with one writer (SQLite)
// every row is busy while any transfer of the process writes, so every
// transfer that arrives meanwhile waits for the next shared transaction.
// A transfer whose rows are free runs alone, at once, as it would without
// this.
//
// Where the engine runs several transfers as one statement
// (dialect.TransferCombiner: PostgreSQL), sharing also pays on rows that
// are not hot, once many transfers of the process are at work: there a
// lane keeps one statement or transaction in flight per transfersPerFlight
// transfers, a transfer that arrives beyond them waits even on free rows,
// and the waiting transfers that name distinct rows run as one combined
// statement — one parse, plan, execution and commit for all of them, and
// one round trip. Transfers whose rows overlap (hot rows) share a
// transaction as above.
//
// What a caller can see:
//   - Each transfer's outcome is its own: a declined one (ErrBelowFloor,
//     ErrNoRow) moves nothing and the others commit.
//   - A failed shared transaction or combined statement changed nothing;
//     each of its transfers then runs alone, with its own retry budget and
//     context, so another caller's failure never becomes yours.
//   - A shared transaction's commit whose answer is lost is settled by
//     asking the server where the dialect can (TxOptions.VerifyCommit); a
//     combined statement commits on its own, as a transfer alone's
//     statement does. Still unknown, the outcome is unknown for each of
//     the transfers: each gets a *CommitUnknownError, as a transfer alone
//     would.
//   - A context that ends while its transfer waits to be taken returns at
//     once, having sent nothing; once the shared transaction has taken the
//     transfer, it returns a *CommitUnknownError (it may commit), as a
//     transfer alone does when ctx ends during its statement. The shared
//     transaction runs until its last caller gives up.
//
// Only within one process and one *DB: other processes' transfers meet
// these at the rows' locks, as any transfers do, and stay correct by the
// same key order. TransferOptions.Alone opts one transfer out.

// maxSharedTransfers bounds the transfers one shared transaction runs:
// its locks are held until all of them are done.
const maxSharedTransfers = 32

// Where the engine combines transfers (dialect.TransferCombiner), a lane
// limits its flights — transfers running alone, shared transactions and
// combined statements in flight — once many transfers of the process are
// at work on it: when the most transfers in flight or waiting that recent
// arrivals saw (peak) is at least combineFrom, it keeps one flight per
// transfersPerFlight of them (at least one); a transfer that arrives while
// the lane has its flights waits, even on free rows, and the waiting
// transfers that name distinct rows run as one combined statement when a
// flight ends. Many transfers at once are what makes the server the
// bottleneck, and there one statement for several transfers saves most:
// one parse, plan, execution and commit, and one round trip. Few, and
// waiting would only add to their time: below combineFrom every transfer
// on free rows runs at once, alone. The peak falls by one every peakDecay
// arrivals that see fewer, so that the lane does not drop its limit the
// moment a combined statement returns its callers, who are about to call
// again (measured in docs/transfer.md).
var (
	combineFrom        = 8
	transfersPerFlight = 16
	peakDecay          = 16
)

// transferLanes holds this DB's lanes: quoted table, key column and key
// type → *transferLane.
type transferLanes struct {
	m sync.Map
	// shared counts the transfers committed in a shared transaction,
	// sharedTx the shared transactions that committed, and failedTx those
	// that failed, their transfers run alone; combined and
	// combinedFailed count those that were one combined statement; for
	// tests.
	shared, sharedTx, failedTx, combined, combinedFailed atomic.Int64
}

// transferLane tracks the transfers of one table (by one key column) in
// flight on a DB.
type transferLane struct {
	table, key string // unquoted, as LockRows takes them
	mu         sync.Mutex
	busy       map[any]int       // key → transfers in flight that move it
	queue      []*queuedTransfer // waiting for the next shared transaction
	sharing    bool              // a shared transaction is in flight
	// flights counts the transfers running alone and the shared
	// transactions and combined statements in flight, moving the
	// transfers they carry; peak and sincePeak track demand (see
	// combineFrom).
	flights, moving, peak, sincePeak int
	// combine is the engine's combined statement, nil where it has none
	// or the server refused it for this table.
	combine dialect.TransferCombiner
}

// queuedTransfer is one transfer waiting in a lane.
type queuedTransfer struct {
	ctx  context.Context
	t    dialect.Transfer
	done chan struct{} // closed when the transfer has an outcome, or alone
	// Written under the lane's lock (taken) or before done closes.
	taken bool // a shared transaction took it: it may commit
	alone bool // run it alone: it was the only one, or the shared one failed
	r     dialect.TransferResult
	err   error
}

// lane returns the lane t runs in, or nil when t cannot share a commit:
// the engine gains nothing by it, the call asked to run alone, or its keys
// are of a type the lane does not order (only integers and strings,
// which every key column normalizes to but the rare binary or time key).
func (h handle) lane(b transferTarget, t dialect.Transfer, opts TransferOptions) *transferLane {
	if opts.Alone || !h.onPool() || !h.db.d.Features().Has(dialect.SharedCommits) {
		return nil
	}
	// A lane's keys are all of one type, which lockShared orders.
	var kind string
	switch t.From.(type) {
	case int64:
		if _, ok := t.To.(int64); !ok {
			return nil
		}
		kind = "int"
	case string:
		if _, ok := t.To.(string); !ok {
			return nil
		}
		kind = "string"
	default:
		return nil
	}
	name := t.Table + "\x00" + t.Key + "\x00" + kind
	if v, ok := h.db.transfers.m.Load(name); ok {
		return v.(*transferLane)
	}
	key := b.Key
	if key == "" {
		key = "id"
	}
	l := &transferLane{table: b.Table, key: key, busy: make(map[any]int)}
	l.combine, _ = h.db.d.(dialect.TransferCombiner)
	v, _ := h.db.transfers.m.LoadOrStore(name, l)
	return v.(*transferLane)
}

// transferSharing runs t on the pool: alone at once when its rows are
// free in this process, else in the next shared transaction.
func (h handle) transferSharing(ctx context.Context, l *transferLane, t dialect.Transfer, opts TransferOptions) (dialect.TransferResult, error) {
	l.mu.Lock()
	if l.free(h.db, t) {
		l.hold(t.From, t.To)
		l.start(1)
		l.mu.Unlock()
		return h.transferHeld(ctx, l, t, opts)
	}
	w := &queuedTransfer{ctx: ctx, t: t, done: make(chan struct{})}
	l.queue = append(l.queue, w)
	l.mu.Unlock()

	select {
	case <-w.done:
	case <-ctx.Done():
		if err := h.abandon(ctx, l, w); err != nil {
			return dialect.TransferResult{}, err
		}
	}
	if w.alone {
		l.mu.Lock()
		l.hold(t.From, t.To)
		l.mu.Unlock()
		return h.transferHeld(ctx, l, t, opts)
	}
	return w.r, w.err
}

// abandon handles w's caller giving up (ctx ended) while it waits. Not
// yet taken, w leaves the queue (or gives back the flight it was handed
// to run alone) and nothing was sent. Taken, and the
// shared transaction not done, the outcome is unknown. A shared
// transaction that is done by now has w's outcome, and abandon returns
// nil for the caller to read it.
func (h handle) abandon(ctx context.Context, l *transferLane, w *queuedTransfer) error {
	l.mu.Lock()
	taken := w.taken
	switch {
	case !taken && w.alone:
		// Handed to its caller to run alone, and not started: the flight
		// next counted for it is free again.
		l.finish(1)
		l.next(h.db)
	case !taken:
		l.queue = slices.DeleteFunc(l.queue, func(q *queuedTransfer) bool { return q == w })
	}
	l.mu.Unlock()
	ce := h.db.d.Classify(dialect.Wrap(dialect.ClassCanceled, ctx.Err()))
	if !taken {
		return fmt.Errorf("racefree: transfer: %w", ce)
	}
	select {
	case <-w.done:
		return nil
	default:
	}
	// The shared transaction runs this transfer's statement or already
	// has: its answer, not its effect, is what is lost.
	h.db.observe(ctx, Event{Kind: EventCommitUnknown, Class: dialect.ClassCommitUnknown, Err: ce})
	return &CommitUnknownError{Err: ce}
}

// transferHeld runs t alone, its keys held in l and its flight counted,
// and releases them.
func (h handle) transferHeld(ctx context.Context, l *transferLane, t dialect.Transfer, opts TransferOptions) (dialect.TransferResult, error) {
	defer func() {
		l.mu.Lock()
		l.release(t.From, t.To)
		l.finish(1)
		l.next(h.db)
		l.mu.Unlock()
	}()
	return h.transferAutocommit(ctx, t, opts)
}

// free reports whether t can run alone at once: no transfer of the
// process is moving its rows or, on an engine with one writer, any row;
// and, where transfers combine, the lane is not full. l.mu is held.
func (l *transferLane) free(db *DB, t dialect.Transfer) bool {
	if db.d.Features().Has(dialect.SingleWriter) {
		return len(l.busy) == 0
	}
	if l.full(1) {
		return false
	}
	return l.busy[t.From] == 0 && l.busy[t.To] == 0
}

// full reports whether the lane has all the flights it allows (see
// combineFrom); arriving is 1 when a transfer arrives, whose view of the
// demand full records. l.mu is held.
func (l *transferLane) full(arriving int) bool {
	if l.combine == nil {
		return false
	}
	if n := l.moving + len(l.queue) + arriving; arriving > 0 && n >= l.peak {
		l.peak, l.sincePeak = n, 0
	} else if arriving > 0 {
		if l.sincePeak++; l.sincePeak >= peakDecay {
			l.peak, l.sincePeak = l.peak-1, 0
		}
	}
	return l.peak >= combineFrom && l.flights >= max(1, l.peak/transfersPerFlight)
}

// start and finish count a flight carrying n transfers; l.mu is held.
func (l *transferLane) start(n int) {
	l.flights++
	l.moving += n
}

func (l *transferLane) finish(n int) {
	l.flights--
	l.moving -= n
}

// hold and release count keys in flight; l.mu is held.
func (l *transferLane) hold(keys ...any) {
	for _, k := range keys {
		l.busy[k]++
	}
}

func (l *transferLane) release(keys ...any) {
	for _, k := range keys {
		if l.busy[k]--; l.busy[k] <= 0 {
			delete(l.busy, k)
		}
	}
}

// next starts what the queue holds, while flights are free: a lone
// waiter runs alone (a transaction of one transfer would only add a lock
// statement and a BEGIN to it); transfers on distinct rows run as one
// combined statement where the engine has one; the rest share a
// transaction, one at a time, since their rows overlap and they would
// only wait for each other's locks. l.mu is held.
func (l *transferLane) next(db *DB) {
	for len(l.queue) > 0 && !l.full(0) {
		if len(l.queue) == 1 {
			w := l.queue[0]
			l.queue = l.queue[:0]
			w.alone = true
			l.start(1)
			close(w.done)
			return
		}
		batch, combined := l.takeDistinct(), true
		if batch == nil {
			combined = false
			if l.sharing {
				return
			}
			n := min(len(l.queue), maxSharedTransfers)
			batch = slices.Clone(l.queue[:n])
			l.queue = slices.Delete(l.queue, 0, n)
			l.sharing = true
		}
		for _, w := range batch {
			w.taken = true
			l.hold(w.t.From, w.t.To)
		}
		l.start(len(batch))
		go l.share(db, batch, combined)
	}
}

// takeDistinct takes from the queue, in its order, up to
// maxSharedTransfers transfers that no key joins and whose amounts and
// floors are of one type, for one combined statement; or nothing, where
// the engine combines no transfers or fewer than half the queue's head
// would go (rows so hot that a shared transaction moves more per
// commit). l.mu is held.
func (l *transferLane) takeDistinct() []*queuedTransfer {
	if l.combine == nil {
		return nil
	}
	head := min(len(l.queue), maxSharedTransfers)
	seen := make(map[any]struct{}, 2*head)
	var picked []int
	first := l.queue[0].t
	for i, w := range l.queue {
		if len(picked) == maxSharedTransfers {
			break
		}
		_, from := seen[w.t.From]
		_, to := seen[w.t.To]
		if from || to || !sameKind(w.t.Amount, first.Amount) || !sameKind(w.t.Floor, first.Floor) {
			continue
		}
		seen[w.t.From], seen[w.t.To] = struct{}{}, struct{}{}
		picked = append(picked, i)
	}
	if len(picked) < 2 || 2*len(picked) < head {
		return nil
	}
	batch := make([]*queuedTransfer, len(picked))
	for j, i := range picked {
		batch[j] = l.queue[i]
		l.queue[i] = nil
	}
	l.queue = slices.DeleteFunc(l.queue, func(w *queuedTransfer) bool { return w == nil })
	return batch
}

// sameKind reports whether a and b, amounts or floors as Transfer holds
// them, are both int64 or both decimal strings: one array binds them.
func sameKind(a, b any) bool {
	switch a.(type) {
	case int64:
		_, ok := b.(int64)
		return ok
	case string:
		_, ok := b.(string)
		return ok
	}
	return false
}

// share runs batch, as one combined statement (combined: its transfers
// share no row) or else in one transaction, then hands each transfer its
// outcome and starts what waits next.
func (l *transferLane) share(db *DB, batch []*queuedTransfer, combined bool) {
	// The transaction runs until the last of its callers gives up: no
	// caller's deadline or cancellation ends it for the others.
	ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	defer cancel()
	var live atomic.Int64
	live.Store(int64(len(batch)))
	for _, w := range batch {
		stop := context.AfterFunc(w.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}

	results := make([]dialect.TransferResult, len(batch))
	start := time.Now()
	var err error
	if combined {
		err = l.runCombined(ctx, db, batch, results)
	} else {
		err = l.run(ctx, db, batch, results)
	}
	if db.observer != nil {
		e := Event{Kind: EventSharedCommit, Table: l.table, Verb: "transfer", Transfers: len(batch), Held: time.Since(start), Err: err}
		if err != nil {
			e.Class = db.d.Classify(err).Class
		}
		db.observe(ctx, e)
	}

	var unknown *CommitUnknownError
	failed := err != nil && !errors.As(err, &unknown)
	l.mu.Lock()
	for _, w := range batch {
		l.release(w.t.From, w.t.To)
	}
	if !combined {
		l.sharing = false
	}
	if combined && errors.Is(err, dialect.ErrTransferUnsupported) {
		l.combine = nil
	}
	l.finish(len(batch))
	if failed {
		// Each runs alone: its flight is counted now, so that next does
		// not start more beside them than the lane allows.
		for range batch {
			l.start(1)
		}
	}
	l.next(db)
	l.mu.Unlock()

	switch {
	case err == nil:
		db.transfers.shared.Add(int64(len(batch)))
		db.transfers.sharedTx.Add(1)
		if combined {
			db.transfers.combined.Add(1)
		}
	case failed:
		// Nothing committed: each runs alone, under its own context and
		// retry budget.
		db.transfers.failedTx.Add(1)
		if combined {
			db.transfers.combinedFailed.Add(1)
		}
		for _, w := range batch {
			w.alone = true
			close(w.done)
		}
		return
	}
	for i, w := range batch {
		w.r, w.err = results[i], err
		close(w.done)
	}
}

// runCombined runs batch's transfers, on distinct rows, as the engine's
// one combined statement on the pool: it commits on its own, as each
// transfer alone would, and a lost answer is unknown for each of them, as
// it would be for each alone.
func (l *transferLane) runCombined(ctx context.Context, db *DB, batch []*queuedTransfer, results []dialect.TransferResult) error {
	c, _ := db.d.(dialect.TransferCombiner)
	ts := make([]dialect.Transfer, len(batch))
	for i, w := range batch {
		ts[i] = w.t
	}
	var args dialect.CombinedTransfers
	if _, ok := ts[0].From.(int64); ok {
		args.From, args.To = combinedColumn[int64](ts, fromOf), combinedColumn[int64](ts, toOf)
	} else {
		args.From, args.To = combinedColumn[string](ts, fromOf), combinedColumn[string](ts, toOf)
	}
	if _, ok := ts[0].Amount.(int64); ok {
		args.Amounts = combinedColumn[int64](ts, amountOf)
	} else {
		args.Amounts = combinedColumn[string](ts, amountOf)
	}
	if _, ok := ts[0].Floor.(int64); ok {
		args.Floors = combinedColumn[int64](ts, floorOf)
	} else {
		args.Floors = combinedColumn[string](ts, floorOf)
	}
	rs, err := c.TransferAll(ctx, db.transferQuerier(), ts, args)
	if err == nil {
		copy(results, rs)
		return nil
	}
	if errors.Is(err, dialect.ErrTransferUnsupported) {
		return fmt.Errorf("racefree: combined transfer on %s: %w", l.table, err)
	}
	ce := db.d.Classify(err)
	if ce.Class == dialect.ClassConnection || ce.Class == dialect.ClassCanceled {
		db.observe(ctx, Event{Kind: EventCommitUnknown, Class: dialect.ClassCommitUnknown, Err: ce})
		return &CommitUnknownError{Err: ce}
	}
	return fmt.Errorf("racefree: combined transfer on %s: %w", l.table, ce)
}

func fromOf(t dialect.Transfer) any   { return t.From }
func toOf(t dialect.Transfer) any     { return t.To }
func amountOf(t dialect.Transfer) any { return t.Amount }
func floorOf(t dialect.Transfer) any  { return t.Floor }

// combinedColumn is one field of every transfer, as a slice to bind;
// takeDistinct made sure each is a T.
func combinedColumn[T any](ts []dialect.Transfer, field func(dialect.Transfer) any) []T {
	out := make([]T, len(ts))
	for i, t := range ts {
		out[i] = field(t).(T)
	}
	return out
}

// run runs batch's transfers in one transaction, once, writing their
// results. On an embedded engine with one writer it first takes the
// process's turn to write, as a transfer alone does (transfer_gate.go).
func (l *transferLane) run(ctx context.Context, db *DB, batch []*queuedTransfer, results []dialect.TransferResult) error {
	if db.gated() {
		if err := db.writers.enter(ctx); err != nil {
			return err
		}
		defer db.writers.leave()
	}
	// A lost commit answer would leave every caller of the batch in
	// doubt: where the engine can tell, ask it (one more statement per
	// shared transaction, not per transfer).
	_, verify := db.d.(dialect.CommitResolver)
	return RunInTx(ctx, db, TxOptions{Retry: NoRetry, VerifyCommit: verify}, func(ctx context.Context, tx *Tx) error {
		var err error
		if _, ok := batch[0].t.From.(int64); ok {
			err = lockShared[int64](ctx, tx, l, batch)
		} else {
			err = lockShared[string](ctx, tx, l, batch)
		}
		if err != nil {
			return err
		}
		for i, w := range batch {
			if results[i], err = tx.transfer(ctx, w.t); err != nil {
				return err
			}
		}
		return nil
	})
}

// lockShared locks the rows of batch's transfers, in key order, so that
// the statements that follow take no lock of their own: a shared
// transaction then cannot deadlock with another, nor with a transfer
// alone, whatever order its transfers come in. The dialect says how
// (dialect.SharedTransferLocker), else LockRows does it.
func lockShared[K cmp.Ordered](ctx context.Context, tx *Tx, l *transferLane, batch []*queuedTransfer) error {
	keys := make([]K, 0, 2*len(batch))
	for _, w := range batch {
		keys = append(keys, w.t.From.(K), w.t.To.(K))
	}
	sl, ok := tx.db.d.(dialect.SharedTransferLocker)
	if !ok {
		_, err := LockRows(ctx, tx, l.table, l.key, keys, RowLockOptions{})
		return err
	}
	query := sl.LockTransfersSQL(batch[0].t)
	if query == "" {
		return nil
	}
	slices.Sort(keys)
	if _, err := tx.tx.Exec(ctx, query, slices.Compact(keys)); err != nil {
		return fmt.Errorf("racefree: lock rows of shared transfers in %s: %w", l.table, tx.db.d.Classify(err))
	}
	return nil
}

// counts returns how many transfers wait in db's lanes and how many keys
// are busy, for tests.
func (ls *transferLanes) counts() (queued, busy int) {
	ls.m.Range(func(_, v any) bool {
		l := v.(*transferLane)
		l.mu.Lock()
		queued += len(l.queue)
		busy += len(l.busy)
		l.mu.Unlock()
		return true
	})
	return queued, busy
}
