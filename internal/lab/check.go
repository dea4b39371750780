package lab

import (
	"context"
	"fmt"
	"strings"
)

// Querier is what the lab needs to create tables and check them: *sql.DB,
// *sql.Tx or *sql.Conn.
type Querier = querier

// Verdict is what the database holds after a run, against the scenario's
// invariant.
type Verdict struct {
	// Duplicates counts rows beyond the first per key (goc, m2m).
	Duplicates *int64
	// Drift is money created (positive) or destroyed (negative) in
	// transfer, or increments that appeared (positive) or were lost
	// (negative) in counter.
	Drift *int64
	// Negative counts accounts below zero (transfer).
	Negative int64
	// Rows is the number of rows (goc, m2m) or the total held (transfer,
	// counter).
	Rows int64
	// OK reports whether the invariant holds.
	OK bool
	// Words says what was found, in plain words.
	Words string
	// Ledger is what the transfer's ledger says (racefree strategy only).
	Ledger *LedgerVerdict
	// Ambiguous counts calls whose effect the caller could not know: an
	// error that left the outcome open (connection lost mid-statement,
	// COMMIT unanswered, canceled), or a process killed mid-call. The
	// counter's invariant allows each of them to have counted or not.
	Ambiguous int64
}

// AmbiguousClass reports whether an error class leaves the call's effect
// unknown to its caller.
func AmbiguousClass(class string) bool {
	for _, p := range []string{"connection lost", "commit outcome unknown", "canceled"} {
		if strings.HasPrefix(class, p) {
			return true
		}
	}
	return false
}

// ambiguousCalls counts the calls of p whose effect is unknown.
func ambiguousCalls(p Part) int64 {
	n := p.InFlight
	for c, k := range p.Errors {
		if AmbiguousClass(c) {
			n += k
		}
	}
	return n
}

// Check reads spec's table and checks the scenario's invariant: no key has
// two rows (goc, m2m); the money adds up and no account is negative, and
// for the racefree strategy the ledger agrees with the balances and no
// transfer was applied twice (transfer); the counters add up to the
// increments callers were told succeeded (counter: p.OK), give or take the
// calls whose outcome nobody learned.
func Check(ctx context.Context, db Querier, spec *Spec, p Part) (Verdict, error) {
	v := Verdict{Ambiguous: ambiguousCalls(p)}
	okCalls := p.OK
	t := spec.Table
	switch spec.Scenario {
	case "goc", "m2m":
		cols := "name"
		if spec.Scenario == "m2m" {
			cols = "post_id, tag_id"
		}
		var dup int64
		err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE((SELECT SUM(c - 1) FROM (SELECT COUNT(*) AS c FROM "+t+
			" GROUP BY "+cols+" HAVING COUNT(*) > 1) d), 0) FROM "+t).Scan(&v.Rows, &dup)
		if err != nil {
			return v, fmt.Errorf("check %s: %w", t, err)
		}
		v.Duplicates, v.OK = &dup, dup == 0
		what := "duplicate rows"
		if spec.Scenario == "m2m" {
			what = "duplicate links"
		}
		v.Words = fmt.Sprintf("%d %s among %d", dup, what, v.Rows)
	case "transfer":
		var sum int64
		err := db.QueryRowContext(ctx, "SELECT COALESCE(SUM(balance), 0), COALESCE(SUM(CASE WHEN balance < 0 THEN 1 ELSE 0 END), 0) FROM "+t).Scan(&sum, &v.Negative)
		if err != nil {
			return v, fmt.Errorf("check %s: %w", t, err)
		}
		want := int64(spec.Keys) * InitialBalance
		drift := sum - want
		v.Rows, v.Drift, v.OK = sum, &drift, drift == 0 && v.Negative == 0
		var words []string
		switch {
		case drift > 0:
			words = append(words, fmt.Sprintf("%d of money created (total %d, should be %d)", drift, sum, want))
		case drift < 0:
			words = append(words, fmt.Sprintf("%d of money destroyed (total %d, should be %d)", -drift, sum, want))
		default:
			words = append(words, fmt.Sprintf("total %d as it should be", sum))
		}
		if v.Negative > 0 {
			words = append(words, fmt.Sprintf("%d accounts below zero", v.Negative))
		}
		if spec.Strategy == "racefree" {
			lv, err := CheckLedger(ctx, db, spec)
			if err != nil {
				return v, err
			}
			v.Ledger = &lv
			v.OK = v.OK && lv.AppliedTwice == 0 && lv.Mismatched == 0
			words = append(words, fmt.Sprintf("ledger: %d transfers, %d applied twice, %d accounts disagree with it", lv.Transfers, lv.AppliedTwice, lv.Mismatched))
		}
		v.Words = strings.Join(words, "; ")
	case "counter":
		var sum int64
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(SUM(n), 0) FROM "+t).Scan(&sum); err != nil {
			return v, fmt.Errorf("check %s: %w", t, err)
		}
		drift := sum - okCalls
		// Each ambiguous call may have counted or not: up to that many
		// increments beyond what callers were told are not drift.
		v.Rows, v.Drift, v.OK = sum, &drift, drift >= 0 && drift <= v.Ambiguous
		switch {
		case drift < 0:
			v.Words = fmt.Sprintf("%d increments lost (counted %d, callers were told %d)", -drift, sum, okCalls)
		case drift > v.Ambiguous:
			v.Words = fmt.Sprintf("%d increments too many (counted %d, callers were told %d, %d calls of unknown outcome)", drift-v.Ambiguous, sum, okCalls, v.Ambiguous)
		case v.Ambiguous > 0:
			v.Words = fmt.Sprintf("counted %d: callers were told %d, and %d of %d calls of unknown outcome had counted", sum, okCalls, drift, v.Ambiguous)
		default:
			v.Words = fmt.Sprintf("counted %d, as callers were told", sum)
		}
	default:
		return v, fmt.Errorf("unknown scenario %q", spec.Scenario)
	}
	return v, nil
}
