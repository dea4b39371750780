package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// VersionOptions configure UpdateIfVersion. The zero value uses the
// column "version".
type VersionOptions struct {
	// Column is the integer column that every writer increments; "" means
	// "version".
	Column string
}

// UpdateIfVersion sets the columns in set on the row of table that lookup
// identifies, and increments its version, only if the row is still at
// version, the version the caller read:
//
//	UPDATE table SET c1 = ?, …, version = version + 1 WHERE k1 = ? AND … AND version = ?
//
// lookup names the row as in the get-or-create family, best by its primary
// key; it should match at most one row. It returns the new version. When
// nothing was written it reads the row again to tell why, and returns a
// *VersionConflictError matching ErrRowGone (the row was deleted) or
// ErrVersionChanged (someone else wrote it; Current says which version it
// is at). An empty set only bumps the version.
//
// The check and the write are one statement, atomic on every engine, so
// two writers that read the same version can never both succeed. It
// guards only against writers that also bump the version. Inside a MySQL
// REPEATABLE READ transaction the re-read is a locking read, which sees the
// latest version rather than the transaction's snapshot.
//
// ex may be a *DB, *Tx or *Conn. Bad input — an empty lookup, a NULL
// lookup value, an invalid or unknown table or column, set naming a lookup
// or the version column — returns an error matching ErrInvalidInput, with
// nothing written.
func UpdateIfVersion(ctx context.Context, ex Executor, table string, lookup Values, version int64, set Values, opts VersionOptions) (newVersion int64, err error) {
	const verb = "update if version"
	h, err := handleOf(ex)
	if err != nil {
		return 0, fmt.Errorf("racefree: %s: %w", verb, err)
	}
	d := h.db.d
	versionCol := opts.Column
	if versionCol == "" {
		versionCol = "version"
	}
	if len(lookup) == 0 {
		return 0, inputError(verb, "empty lookup: it must name the row")
	}
	keys := slices.Sorted(maps.Keys(lookup))
	for _, k := range keys {
		if lookup[k] == nil {
			return 0, inputError(verb, "lookup column %q is NULL: a NULL never equals anything, so no row would match", k)
		}
	}
	cols := slices.Sorted(maps.Keys(set))
	qt, err := d.Quote(table)
	if err != nil {
		return 0, fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
	}
	quoted := map[string]string{}
	for _, c := range slices.Concat(keys, []string{versionCol}, cols) {
		q, err := d.QuoteIdent(c)
		if err != nil {
			return 0, fmt.Errorf("racefree: %s: %w: %w", verb, ErrInvalidInput, err)
		}
		quoted[c] = q
	}
	for _, c := range cols {
		if _, ok := lookup[c]; ok || c == versionCol {
			return 0, inputError(verb, "set must not name a lookup column or the version column: %q", c)
		}
	}
	if _, ok := lookup[versionCol]; ok {
		return 0, inputError(verb, "the lookup must not name the version column %q: pass the version you read as version", versionCol)
	}
	if d.Features().Has(dialect.DoubleQuotedStrings) {
		// An unknown double-quoted name in WHERE would be read as a
		// string, which would report a present row as gone.
		t, err := h.db.table(ctx, h.q, verb, table)
		if err != nil {
			return 0, err
		}
		for _, c := range append(keys, versionCol) {
			if _, ok := t.Column(c); !ok {
				return 0, inputError(verb, "table %s has no column %q", table, c)
			}
		}
	}

	// where is "k1 = ? AND … ", its arguments after those of the caller.
	where := func(args []any) (string, []any) {
		var w strings.Builder
		for _, k := range keys {
			args = append(args, lookup[k])
			w.WriteString(quoted[k] + " = " + d.Placeholder(len(args)) + " AND ")
		}
		return w.String(), args
	}
	var b strings.Builder
	args := make([]any, 0, len(cols)+len(keys)+1)
	b.WriteString("UPDATE " + qt + " SET ")
	for _, c := range cols {
		args = append(args, set[c])
		b.WriteString(quoted[c] + " = " + d.Placeholder(len(args)) + ", ")
	}
	qv := quoted[versionCol]
	w, args := where(args)
	args = append(args, version)
	b.WriteString(qv + " = " + qv + " + 1 WHERE " + w + qv + " = " + d.Placeholder(len(args)))
	res, err := h.q.Exec(ctx, b.String(), args...)
	if err != nil {
		return 0, optimisticErr(h.db, verb, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, h.db.wrapErr(verb, err)
	}
	if n > 0 {
		return version + 1, nil
	}

	w, rereadArgs := where(nil)
	reread := "SELECT " + qv + " FROM " + qt + " WHERE " + strings.TrimSuffix(w, " AND ")
	if h.tx != nil {
		// The version the row is at now, not the one a snapshot taken
		// before the conflicting write shows (InnoDB's REPEATABLE READ):
		// a locking read where the engine needs one.
		reread += h.tx.freshReadClause()
	}
	conflict := &VersionConflictError{Table: table, Lookup: lookup, Expected: version}
	err = h.q.QueryRow(ctx, reread, rereadArgs...).Scan(&conflict.Current)
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
