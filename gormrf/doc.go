// Package gormrf makes GORM's get-or-create race-free: [FirstOrCreate] and
// [UpdateOrCreate] on a *gorm.DB return exactly one row per lookup however
// many goroutines, processes or machines ask at once, with no
// unique-violation error for the callers who lost the race, and [RunInTx]
// runs a GORM transaction with racefree's retries of serialization
// failures, deadlocks and SQLITE_BUSY.
//
// GORM's own FirstOrCreate is a SELECT followed by an INSERT: two callers
// that both miss both insert, and one of them gets a unique-violation error
// (or, without a unique index, a duplicate row). gormrf hands the work to
// racefree, which lets the database decide (see racefree.GetOrCreate).
//
// # Adoption
//
// Register racefree once on the *gorm.DB, naming the engine's racefree
// dialect:
//
//	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{})
//	err = gormrf.Register(ctx, db, pgdialect.New())
//
// Then, anywhere that db (or a session or transaction made from it) is at
// hand:
//
//	var user User
//	created, err := gormrf.FirstOrCreate(ctx, db, &user, User{Email: "a@example.com"}, User{Name: "A"})
//
// # Models
//
// Table and column names come from the model's GORM schema (tags, TableName,
// the db's NamingStrategy); db.Table(name) overrides the table. A lookup and
// the attrs (defaults for a new row) are each either a value of the model
// type (or a pointer to one), whose non-zero fields count, as in GORM's
// Where(struct) and Attrs(struct), or a map[string]any keyed by column or
// field name, whose every entry counts (a nil value looks up IS NULL).
//
// A new row gets what GORM's Create would insert for a model holding the
// lookup and attrs: every creatable column, zero values included, except
// columns with a database default (an auto-increment primary key, a
// default:… tag without a Go value) left zero; autoCreateTime and
// autoUpdateTime fields (CreatedAt, UpdatedAt) set to db.NowFunc() in their
// declared precision when zero. UpdateOrCreate also sets autoUpdateTime
// fields when it updates. The row the database returns (primary key
// included) is written into dest; dest's earlier contents are ignored.
//
// A model with a gorm.DeletedAt field looks only at rows that are not soft
// deleted, as GORM does: the lookup gains "deleted_at IS NULL", which an
// ordinary unique index does not cover (NULLs are distinct), so racefree
// takes its named-lock strategy. Use db.Unscoped() to look at every row
// and let the unique index decide.
//
// gormrf runs no GORM callbacks or hooks (BeforeCreate, AfterFind, …) and
// no associations: the statements are racefree's. Fill generated values
// such as UUID keys in the attrs.
//
// # Transactions
//
// Every function works on the pool and inside a transaction: GORM's own
// (db.Transaction, db.Begin), whose statements racefree joins without ever
// committing or rolling back, guarding its own with savepoints; or
// [RunInTx]'s, which knows its isolation level. [Executor] hands any other
// racefree verb (LockNamed, LockRows, GetOrCreateMany, …) the same
// transaction.
package gormrf
