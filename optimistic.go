package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// VersionedRow names one row and the version the caller read it at.
type VersionedRow struct {
	// Table and KeyColumn name the table and the column that identifies
	// the row (best the primary key); Key is its value.
	Table, KeyColumn string
	Key              any
	// VersionColumn is an integer column that every writer increments; ""
	// means "version".
	VersionColumn string
	// Version is the version the caller read.
	Version int64
}

// UpdateIfVersion sets the columns in set on row, and increments its
// version, only if the row is still at row.Version:
//
//	UPDATE table SET c1 = ?, …, version = version + 1 WHERE key = ? AND version = ?
//
// It returns the new version. When nothing was written it reads the row
// again to tell why, and returns a *VersionConflictError matching
// ErrRowGone (the row was deleted) or ErrVersionChanged (someone else
// wrote it; Current says which version it is at). An empty set only bumps
// the version.
//
// The check and the write are one statement, atomic on every engine, so two
// writers that read the same version can never both succeed. It guards only
// against writers that also bump the version. Inside a MySQL REPEATABLE READ
// transaction the re-read is a locking read, which sees the latest version
// rather than the transaction's snapshot.
//
// ex may be a *DB, *Tx or *Conn. Bad input — no key, an invalid or unknown
// table or column, set naming the key or version column — returns an error
// matching ErrInvalidInput, with nothing written.
func UpdateIfVersion(ctx context.Context, ex Executor, row VersionedRow, set Values) (newVersion int64, err error) {
	const verb = "update if version"
	h, err := handleOf(ex)
	if err != nil {
		return 0, fmt.Errorf("racefree: %s: %w", verb, err)
	}
	d := h.db.d
	if row.VersionColumn == "" {
		row.VersionColumn = "version"
	}
	if row.Key == nil {
		return 0, inputError(verb, "nil key")
	}
	cols := slices.Sorted(func(yield func(string) bool) {
		for c := range set {
			if !yield(c) {
				return
			}
		}
	})
	qt, err := d.Quote(row.Table)
	if err != nil {
		return 0, fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
	}
	quoted := map[string]string{}
	for _, c := range append([]string{row.KeyColumn, row.VersionColumn}, cols...) {
		q, err := d.QuoteIdent(c)
		if err != nil {
			return 0, fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
		}
		quoted[c] = q
	}
	for _, c := range cols {
		if c == row.KeyColumn || c == row.VersionColumn {
			return 0, inputError(verb, "set must not name the key or version column %q", c)
		}
	}
	if d.Features().Has(dialect.DoubleQuotedStrings) {
		// An unknown double-quoted name in WHERE would be read as a
		// string, which would report a present row as gone.
		t, err := h.db.table(ctx, h.q, verb, row.Table)
		if err != nil {
			return 0, err
		}
		for _, c := range []string{row.KeyColumn, row.VersionColumn} {
			if _, ok := t.Column(c); !ok {
				return 0, inputError(verb, "table %s has no column %q", row.Table, c)
			}
		}
	}

	var b strings.Builder
	args := make([]any, 0, len(cols)+2)
	b.WriteString("UPDATE " + qt + " SET ")
	for _, c := range cols {
		args = append(args, set[c])
		b.WriteString(quoted[c] + " = " + d.Placeholder(len(args)) + ", ")
	}
	qv, qk := quoted[row.VersionColumn], quoted[row.KeyColumn]
	args = append(args, row.Key, row.Version)
	b.WriteString(qv + " = " + qv + " + 1 WHERE " + qk + " = " + d.Placeholder(len(args)-1) + " AND " + qv + " = " + d.Placeholder(len(args)))
	res, err := h.q.Exec(ctx, b.String(), args...)
	if err != nil {
		return 0, optimisticErr(h.db, verb, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, h.db.wrapErr(verb, err)
	}
	if n > 0 {
		return row.Version + 1, nil
	}

	reread := "SELECT " + qv + " FROM " + qt + " WHERE " + qk + " = " + d.Placeholder(1)
	if h.tx != nil {
		// The version the row is at now, not the one a snapshot taken
		// before the conflicting write shows (InnoDB's REPEATABLE READ):
		// a locking read where the engine needs one.
		reread += h.tx.freshReadClause()
	}
	conflict := &VersionConflictError{Table: row.Table, Key: row.Key, Expected: row.Version}
	err = h.q.QueryRow(ctx, reread, row.Key).Scan(&conflict.Current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		conflict.Gone = true
	case err != nil:
		return 0, h.db.wrapErr(verb+": re-read version", err)
	}
	return 0, conflict
}

// freshReadClause is the clause that makes a SELECT in tx read the latest
// committed version of a row, as the dialect says ("" for a plain read,
// and where no read of tx can see past its snapshot).
func (tx *Tx) freshReadClause() string {
	fr, ok := tx.db.d.(dialect.FreshReader)
	if !ok {
		return ""
	}
	iso, known := tx.Isolation()
	clause, _ := fr.FreshRead(iso, known)
	return clause
}

// optimisticErr classifies err, turning an unknown table or column into
// ErrInvalidInput.
func optimisticErr(db *DB, verb string, err error) error {
	ce := db.d.Classify(err)
	if db.undefined(err, true) {
		return fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, ce)
	}
	return fmt.Errorf("racefree: %s: %w", verb, ce)
}
