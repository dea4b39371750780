package dialect

import "context"

// ConnLimits is a server's connection budget, as racefree doctor reports
// it.
type ConnLimits struct {
	// Max is how many sessions the server accepts at once
	// (max_connections).
	Max int
	// Reserved is how many of Max only administrators may use
	// (PostgreSQL's superuser_reserved_connections and
	// reserved_connections): the others get Max − Reserved.
	Reserved int
	// PerUser caps the sessions of the current user, 0 when nothing does
	// (PostgreSQL's role CONNECTION LIMIT, MySQL's max_user_connections).
	PerUser int
	// InUse is how many sessions are open now, the asking one included.
	InUse int
}

// Available is how many sessions the current user may open in all: Max
// less Reserved, or PerUser if that is lower.
func (l ConnLimits) Available() int {
	n := l.Max - l.Reserved
	if l.PerUser > 0 && l.PerUser < n {
		n = l.PerUser
	}
	return n
}

// ConnLimiter is implemented by engines with a connection limit (every
// server; not SQLite, which has no sessions to count).
type ConnLimiter interface {
	// ConnLimits reads the server's connection budget on q.
	ConnLimits(ctx context.Context, q Querier) (ConnLimits, error)
}

// SessionIdentifier is implemented by engines whose server sessions have
// an id a client can read. racefree doctor uses it to find a
// transaction-pooling proxy (PgBouncer in transaction mode, ProxySQL's
// multiplexing) between the client and the server: behind one, the
// statements of one client connection run on whichever server session is
// free, and every session-scoped thing — a session lock, a prepared
// statement, a SET — silently lands on the wrong client.
type SessionIdentifier interface {
	// SessionIDSQL is a statement that returns one row, one column: the
	// id of the server session that runs it.
	SessionIDSQL() string
}
