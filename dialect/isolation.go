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

// ReadsCommitted reports whether a transaction at iso (known false: not
// known) sees, statement by statement, everything committed before the
// statement began: READ COMMITTED or READ UNCOMMITTED for sure, or the
// server's default where that is READ COMMITTED (defaultRC).
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
