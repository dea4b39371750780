package pgdialect

import (
	"regexp"
	"strconv"
)

// CockroachDB speaks the PostgreSQL protocol and is recognised from
// version(), which reads "CockroachDB CCL v24.1.2 (x86_64-pc-linux-gnu,
// built …)" ("OSS" for the open-source builds before 23.1). Its
// server_version_num says which PostgreSQL it imitates (13 for years, 18
// from 26.3), not what it can do: every decision below reads
// CockroachDB's own version. Its documented rules, which Detect and the
// dialect's answers follow:
//
//   - No advisory locks before v26.3: pg_advisory_xact_lock does not
//     exist (SQLSTATE 42883), and pg_advisory_lock and the other
//     session-level functions are stubs that return at once and lock
//     nothing (cockroachdb/cockroach#13546; the docs list them as
//     unsupported). v26.3 adds real transaction-level advisory locks
//     (cockroachdb/cockroach#168353: replicated locks in
//     system.advisory_locks, released at COMMIT or ROLLBACK, NOWAIT
//     through the pg_try_ forms, lock_timeout honoured), scoped to the
//     current database where PostgreSQL's are cluster-wide; session-level
//     ones are still missing (#169981). So AdvisoryLocks, which promises
//     session locks too, stays off on every version, and
//     XactAdvisoryLocks says when the transaction-level ones are there.
//   - No LOCK TABLE; no UNIQUE NULLS NOT DISTINCT (and no
//     pg_index.indnullsnotdistinct, which ReadTable must not read).
//   - No xmax system column: an upsert cannot say whether it inserted
//     (UpsertInserted answers false).
//   - SERIALIZABLE by default, with optimistic conflict detection: a
//     conflicting transaction fails with 40001, and the client is
//     expected to run it again from the start (ClientRetries). READ
//     COMMITTED exists from v23.2 (preview, behind the cluster setting
//     sql.txn.read_committed_isolation.enabled) and is on by default
//     from v24.1; with the setting off a READ COMMITTED transaction runs
//     SERIALIZABLE.
//   - Under SERIALIZABLE, FOR UPDATE locks are best-effort and FOR SHARE
//     takes none unless enable_shared_locking_for_serializable is set:
//     correctness there comes from the 40001 retries, not the locks.
//   - 40003 (statement completion unknown) reports a result that is
//     ambiguous: the statement, or the COMMIT, may have taken effect.

// cockroachRelease matches the release in CockroachDB's version().
var cockroachRelease = regexp.MustCompile(`\bv(\d+)\.(\d+)(?:\.(\d+))?`)

// cockroachVersion returns the release version() names, as "24.1.2" and
// as its major and minor numbers; ok is false when it names none.
func cockroachVersion(version string) (release string, major, minor int, ok bool) {
	m := cockroachRelease.FindStringSubmatch(version)
	if m == nil {
		return "", 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	release = m[1] + "." + m[2]
	if m[3] != "" {
		release += "." + m[3]
	}
	return release, major, minor, true
}

// XactAdvisoryLocks reports whether pg_advisory_xact_lock and
// pg_try_advisory_xact_lock take real locks on the detected server:
// always on PostgreSQL, from v26.3 on CockroachDB (where they exclude
// sessions connected to the same database only). It is for the named-lock
// SQL of this dialect; the AdvisoryLocks feature also promises
// session-level locks, which CockroachDB does not have.
func (d *Dialect) XactAdvisoryLocks() bool {
	if !d.cockroachDB {
		return true
	}
	return d.crdbMajor > 26 || d.crdbMajor == 26 && d.crdbMinor >= 3
}
