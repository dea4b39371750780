package serve

import (
	"context"
	"fmt"
	"strings"

	"github.com/racefree/racefree"
)

// Isolation returns the default isolation level of db's sessions, in the
// words the page shows.
func Isolation(ctx context.Context, db *racefree.DB) (string, error) {
	q := db.SQL()
	var iso string
	var err error
	switch db.Dialect().Name() {
	case "postgres":
		err = q.QueryRowContext(ctx, "SHOW transaction_isolation").Scan(&iso)
	case "mysql":
		err = q.QueryRowContext(ctx, "SELECT @@SESSION.transaction_isolation").Scan(&iso)
		if err != nil { // MariaDB before 11.1 knows only the old name
			err = q.QueryRowContext(ctx, "SELECT @@SESSION.tx_isolation").Scan(&iso)
		}
	case "sqlite":
		return "serializable (SQLite has no other; one writer at a time)", nil
	default:
		return "unknown", nil
	}
	if err != nil {
		return "", fmt.Errorf("serve: read isolation level: %w", err)
	}
	return strings.ToLower(strings.ReplaceAll(iso, "-", " ")), nil
}
