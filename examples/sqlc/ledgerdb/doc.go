// Package ledgerdb is sqlc's output for the example's schema.sql and
// query.sql (see ../sqlc.yaml): the DBTX interface, New, Queries and
// WithTx that every sqlc package for database/sql has. This file is not
// generated; the others are in sqlc's form.
package ledgerdb
