package mysqldialect

import (
	"context"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.ConnLimiter = (*Dialect)(nil)

// ConnLimits reads max_connections (the server admits one more session
// for an administrator, which is not counted), max_user_connections (0:
// none) and the sessions open now.
func (d *Dialect) ConnLimits(ctx context.Context, q dialect.Querier) (dialect.ConnLimits, error) {
	var l dialect.ConnLimits
	err := q.QueryRow(ctx, "SELECT @@max_connections, @@max_user_connections,"+
		" (SELECT COUNT(*) FROM information_schema.PROCESSLIST)").Scan(&l.Max, &l.PerUser, &l.InUse)
	return l, err
}

var _ dialect.SessionIdentifier = (*Dialect)(nil)

// SessionIDSQL reads the connection id the server gave the session.
func (d *Dialect) SessionIDSQL() string { return "SELECT CONNECTION_ID()" }
