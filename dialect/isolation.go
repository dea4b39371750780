package dialect

import (
	"database/sql"
	"strings"
)

// ParseIsolation reads an isolation level as servers spell it
// ("READ-COMMITTED", "read committed", "REPEATABLE_READ"), or
// sql.LevelDefault for anything else.
func ParseIsolation(s string) sql.IsolationLevel {
	switch strings.ToLower(strings.NewReplacer("-", " ", "_", " ").Replace(strings.TrimSpace(s))) {
	case "read uncommitted":
		return sql.LevelReadUncommitted
	case "read committed":
		return sql.LevelReadCommitted
	case "repeatable read":
		return sql.LevelRepeatableRead
	case "serializable":
		return sql.LevelSerializable
	}
	return sql.LevelDefault
}

// ReadsCommitted reports whether a transaction at iso sees, statement by
// statement, everything committed before the statement began: READ
// COMMITTED or READ UNCOMMITTED for sure, and sql.LevelDefault where the
// server's default is READ COMMITTED (defaultRC). A level that is not
// known (known false: a wrapped transaction begun without options) is
// never taken to: the transaction may run at any level.
func ReadsCommitted(iso sql.IsolationLevel, known, defaultRC bool) bool {
	switch {
	case !known:
		return false
	case iso == sql.LevelReadCommitted, iso == sql.LevelReadUncommitted:
		return true
	case iso == sql.LevelDefault:
		return defaultRC
	}
	return false
}
