package dialecttest

// testLocks runs the checks of the lock interfaces of package dialect: named
// locks (AdvisoryLocks, NodeLocalNamedLocks), lock waits bounded by a
// timeout, table locks (TableLocks). Each engine spells these in SQL only
// its dialect knows (pg_advisory_xact_lock, GET_LOCK, lock_timeout,
// innodb_lock_wait_timeout, busy_timeout, LOCK TABLE), so the suite can
// check them only through the interfaces that carry that SQL, which
// dialect/locks.go introduces; their checks join this group with them:
// for each one, that a second session is excluded while the first holds
// the lock, that a bounded wait fails with ClassLockNotAcquired (ClassBusy on
// SQLite) and leaves the transaction usable, and that the lock is gone
// when its transaction or session ends.
func testLocks(h *h) {
	h.t.Skip("the lock interfaces of package dialect (dialect/locks.go) are not on main yet: their checks join this group with them")
}
