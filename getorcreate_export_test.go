package racefree

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
