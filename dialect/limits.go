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
