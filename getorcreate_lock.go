package racefree

import "context"

// lockForGetOrCreate takes the lock strategy's named lock for the rest of
// tx: LockNamed, which every engine supports (PostgreSQL advisory locks, a
// row lock on MySQL/MariaDB and CockroachDB, the write lock on SQLite).
func lockForGetOrCreate(ctx context.Context, tx *Tx, name string) error {
	return LockNamed(ctx, tx, name, LockOptions{})
}

// prepareLocks makes sure, once per DB and before any transaction holds a
// connection, that LockNamed's table exists where it needs one. LockNamed
// would create it on first use on a second pooled connection, which a
// pool whose every connection is in a get-or-create transaction cannot
// give.
func prepareLocks(ctx context.Context, db *DB) error {
	return CreateLockTable(ctx, db)
}
