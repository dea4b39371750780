package lab

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/racefree/racefree"
)

// Leftovers is what a run left on a server once every worker process had
// ended: sessions still open and named locks still held. Both must be
// zero — a killed process's sessions end with its connections, and the
// server releases their locks — unless something (a proxy, a pool, the
// code under test) keeps a connection alive.
type Leftovers struct {
	// Sessions counts server sessions of the run's workers still open.
	Sessions int64 `json:"sessions"`
	// Locks counts named or advisory locks of the run still held, and
	// SQLite's write lock.
	Locks int64 `json:"locks"`
	// Words says what was checked and found.
	Words string `json:"words"`
}

// LeftoverWait is how long the check waits for the server to notice that
// connections of dead processes are gone.
const LeftoverWait = 10 * time.Second

// CheckLeftovers looks on the server db for what the run of spec left:
// sessions named tag (PostgreSQL) or coming from one of ports
// (MySQL/MariaDB), advisory locks they hold, GET_LOCK names and
// racefree_locks rows of the run still locked, SQLite's write lock. It
// waits up to LeftoverWait for them to go.
func CheckLeftovers(ctx context.Context, db *racefree.DB, spec *Spec, tag string, ports []int, rounds int) (Leftovers, error) {
	deadline := time.Now().Add(LeftoverWait)
	for {
		l, err := checkLeftoversOnce(ctx, db, spec, tag, ports, rounds)
		if err != nil || (l.Sessions == 0 && l.Locks == 0) || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return l, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkLeftoversOnce(ctx context.Context, db *racefree.DB, spec *Spec, tag string, ports []int, rounds int) (Leftovers, error) {
	var l Leftovers
	q := db.SQL()
	switch db.Dialect().Name() {
	case "postgres":
		err := q.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1),
			(SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			  WHERE l.locktype = 'advisory' AND a.application_name = $1)`, tag).Scan(&l.Sessions, &l.Locks)
		if err != nil {
			return l, fmt.Errorf("check leftovers: %w", err)
		}
		l.Words = fmt.Sprintf("%d sessions named %s, %d advisory locks held by them", l.Sessions, tag, l.Locks)
	case "mysql":
		n, err := mysqlSessions(ctx, q, ports)
		if err != nil {
			return l, err
		}
		l.Sessions = n
		used, names, err := mysqlUsedLocks(ctx, q, spec, rounds)
		if err != nil {
			return l, err
		}
		rows, err := lockRowsHeld(ctx, q, spec.Table)
		if err != nil {
			return l, err
		}
		l.Locks = used + rows
		l.Words = fmt.Sprintf("%d sessions from the workers' %d connections, %d of %d GET_LOCK names in use, %d racefree_locks rows locked",
			l.Sessions, len(ports), used, names, rows)
	case "sqlite":
		held, err := sqliteWriteLockHeld(ctx, q)
		if err != nil {
			return l, err
		}
		if held {
			l.Locks = 1
			l.Words = "the write lock is held"
		} else {
			l.Words = "the write lock is free"
		}
	default:
		l.Words = "not checked on " + db.Dialect().Name()
	}
	return l, nil
}

// mysqlSessions counts the sessions whose client port is one of ports:
// MySQL sessions carry no name, and performance_schema (where connection
// attributes are) is often off.
func mysqlSessions(ctx context.Context, q *sql.DB, ports []int) (int64, error) {
	if len(ports) == 0 {
		return 0, nil
	}
	want := make(map[string]bool, len(ports))
	for _, p := range ports {
		want[strconv.Itoa(p)] = true
	}
	rows, err := q.QueryContext(ctx, "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()")
	if err != nil {
		return 0, fmt.Errorf("check leftover sessions: %w", err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var host sql.NullString
		if err := rows.Scan(&host); err != nil {
			return 0, fmt.Errorf("check leftover sessions: %w", err)
		}
		if i := strings.LastIndexByte(host.String, ':'); i >= 0 && want[host.String[i+1:]] {
			n++
		}
	}
	return n, rows.Err()
}

// LockNames lists every named lock the advisory and namedlock strategies
// may have taken in a run of rounds key sets.
func LockNames(spec *Spec, rounds int) []string {
	var k *keyed
	switch spec.Scenario {
	case "goc":
		k = gocKeyed
	case "m2m":
		k = m2mKeyed
	default:
		return nil
	}
	if spec.Strategy != "advisory" && spec.Strategy != "namedlock" {
		return nil
	}
	names := make([]string, 0, rounds*spec.Keys)
	for r := range rounds {
		for key := range spec.Keys {
			names = append(names, lockName(spec, k.args(r, key)))
		}
	}
	return names
}

// mysqlUsedLocks counts the run's GET_LOCK names still in use.
func mysqlUsedLocks(ctx context.Context, q *sql.DB, spec *Spec, rounds int) (used int64, n int, err error) {
	names := LockNames(spec, rounds)
	const batch = 200
	for lo := 0; lo < len(names); lo += batch {
		part := names[lo:min(lo+batch, len(names))]
		args := make([]any, len(part))
		exprs := make([]string, len(part))
		for i, name := range part {
			args[i], exprs[i] = name, "(IS_USED_LOCK(?) IS NOT NULL)"
		}
		var c int64
		if err := q.QueryRowContext(ctx, "SELECT "+strings.Join(exprs, "+"), args...).Scan(&c); err != nil {
			return 0, 0, fmt.Errorf("check leftover locks: %w", err)
		}
		used += c
	}
	return used, len(names), nil
}

// lockRowsHeld counts the rows of racefree_locks for the run's names that
// some transaction still holds: those a SKIP LOCKED read cannot see.
func lockRowsHeld(ctx context.Context, q *sql.DB, table string) (int64, error) {
	var exists int
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'racefree_locks'").Scan(&exists); err != nil {
		return 0, fmt.Errorf("check leftover lock rows: %w", err)
	}
	if exists == 0 {
		return 0, nil
	}
	tx, err := q.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("check leftover lock rows: %w", err)
	}
	defer tx.Rollback()
	like := strings.NewReplacer("_", `\_`, "%", `\%`).Replace(table) + ":%"
	var all, free int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM racefree_locks WHERE name LIKE ?", like).Scan(&all); err != nil {
		return 0, fmt.Errorf("check leftover lock rows: %w", err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT id FROM racefree_locks WHERE name LIKE ? FOR UPDATE SKIP LOCKED", like)
	if err != nil {
		return 0, fmt.Errorf("check leftover lock rows: %w", err)
	}
	for rows.Next() {
		free++
	}
	rows.Close()
	return all - free, rows.Err()
}

// sqliteWriteLockHeld tries to take SQLite's write lock without waiting.
func sqliteWriteLockHeld(ctx context.Context, q *sql.DB) (bool, error) {
	conn, err := q.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("check the write lock: %w", err)
	}
	defer conn.Close()
	// The connection's busy timeout changes: it must not go back to the
	// pool.
	defer conn.Raw(func(any) error { return driver.ErrBadConn })
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return false, fmt.Errorf("check the write lock: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil) // racefree opens SQLite with _txlock=immediate: BEGIN takes the write lock
	if err != nil {
		return true, nil
	}
	return false, tx.Rollback()
}
