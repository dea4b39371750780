package racefree

import "context"

// SetGetOrCreateHooks installs the constraint path's test hooks (nil
// leaves one unset) and returns a func that removes them.
func SetGetOrCreateHooks(beforeInsert, beforeReread func()) (restore func()) {
	if beforeInsert != nil {
		testHookBeforeInsert.Store(&beforeInsert)
	}
	if beforeReread != nil {
		testHookBeforeReread.Store(&beforeReread)
	}
	return func() { testHookBeforeInsert.Store(nil); testHookBeforeReread.Store(nil) }
}

// AdaptiveHitRatio returns the hit ratio adaptive mode has observed for
// table and lookup columns (given sorted), 1 before any call.
func AdaptiveHitRatio(db *DB, table string, cols ...string) float64 {
	key := table
	for _, c := range cols {
		key += "\x00" + c
	}
	return db.hitStat(key).ratio()
}

// CoalescedCalls returns how many calls on db so far were answered by another
// call's trip to the database.
func CoalescedCalls(db *DB) int64 { return db.coalesced.Load() }

// LostRaces returns how many get-or-create family calls on db lost the
// race to create a row and returned the winner's instead.
func LostRaces(db *DB) int64 { return db.lostRaces.Load() }

// ResetLostRaces sets db's lost-race count back to zero.
func ResetLostRaces(db *DB) { db.lostRaces.Store(0) }

// PlannedStrategy returns the strategy a GetOrCreate of lookup on table
// would run with: the planner's own answer, for comparing with Explain.
func PlannedStrategy(ctx context.Context, db *DB, table string, lookup Values) (Strategy, error) {
	c, err := planCall[Values](ctx, db, "get or create", table, lookup, nil, Options{})
	if err != nil {
		return 0, err
	}
	return c.strat, nil
}

// ErrPinnedNotSent is what a native read on a pinned connection reports to
// the hook when the connection was found dead or busy before sending.
var ErrPinnedNotSent = errPinnedNotSent

// SetNativeReadHook installs f to see the outcome of each native read (nil
// when the row was read natively) and returns a func that removes it.
func SetNativeReadHook(f func(err error)) (restore func()) {
	testHookNativeRead.Store(&f)
	return func() { testHookNativeRead.Store(nil) }
}

// TransferSharing reports how many transfers committed in a shared
// transaction, in how many such transactions, and how many shared
// transactions failed.
func TransferSharing(db *DB) (transfers, txs, failed int64) {
	return db.transfers.shared.Load(), db.transfers.sharedTx.Load(), db.transfers.failedTx.Load()
}

// TransfersCombined reports how many combined statements committed and
// how many failed, their transfers run alone.
func TransfersCombined(db *DB) (committed, failed int64) {
	return db.transfers.combined.Load(), db.transfers.combinedFailed.Load()
}

// TransfersQueued reports how many transfers wait for a shared
// transaction, and how many keys transfers in flight are moving.
func TransfersQueued(db *DB) (queued, busyKeys int) { return db.transfers.counts() }
