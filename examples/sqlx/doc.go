// Package sqlxexample shows racefree with sqlx, in a module of its own so
// that racefree's core module never depends on sqlx. sqlx wraps
// database/sql, so adoption is one line on either side:
//
//	db, err := racefree.New(ctx, xdb.DB, pgdialect.New()) // *sqlx.DB → *racefree.DB
//	tx := db.WrapTx(xtx.Tx, nil)                           // *sqlx.Tx → *racefree.Tx
//
// and inside racefree.RunInTx, sqlx's methods on the transaction come from
//
//	xtx := &sqlx.Tx{Tx: tx.SQL(), Mapper: xdb.Mapper}
//
// sqlx keeps the driver's name in an unexported field of sqlx.Tx, so such
// a Tx binds "?" placeholders only: on PostgreSQL pass queries through
// xdb.Rebind (or write $1, $2), and use xdb.BindNamed for named queries.
// racefree's struct results use the same `db:"column"` tags as sqlx.
package sqlxexample
