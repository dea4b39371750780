// Package ledgerpg is sqlc's output for the example's schema.sql and
// query.sql with sql_package "pgx/v5" (see ../sqlc.yaml): the DBTX
// interface, New, Queries and WithTx(pgx.Tx) that every sqlc package for
// pgx v5 has. This file is not generated; the others are in sqlc's form.
package ledgerpg
