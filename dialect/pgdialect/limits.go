package pgdialect

import (
	"context"
	"database/sql"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.ConnLimiter = (*Dialect)(nil)

// ConnLimits reads max_connections, the slots reserved for superusers
// (superuser_reserved_connections, and PostgreSQL 16's
// reserved_connections for pg_use_reserved_connections), the current
// role's CONNECTION LIMIT (-1: none) and the client sessions open now.
func (d *Dialect) ConnLimits(ctx context.Context, q dialect.Querier) (dialect.ConnLimits, error) {
	var l dialect.ConnLimits
	var reserved16 sql.NullInt64
	var perUser sql.NullInt64
	err := q.QueryRow(ctx, "SELECT current_setting('max_connections')::int,"+
		" current_setting('superuser_reserved_connections')::int,"+
		" NULLIF(current_setting('reserved_connections', true), '')::int,"+
		" (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),"+
		" (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')").
		Scan(&l.Max, &l.Reserved, &reserved16, &perUser, &l.InUse)
	if err != nil {
		return l, err
	}
	l.Reserved += int(reserved16.Int64)
	if perUser.Int64 > 0 {
		l.PerUser = int(perUser.Int64)
	}
	return l, nil
}

var _ dialect.SessionIdentifier = (*Dialect)(nil)

// SessionIDSQL reads the server process that runs the session.
func (d *Dialect) SessionIDSQL() string { return "SELECT pg_backend_pid()" }
