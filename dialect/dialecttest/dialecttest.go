// Package dialecttest is racefree's conformance suite: one set of tests that
// runs unchanged against every engine, so that each dialect is held to the
// same contract. Each dialect package's tests call Run with its engine name.
//
// The suite covers identifier quoting, feature detection, the classification
// of errors the real server returns (unique violations with the constraint
// or columns, lock timeouts, cancellation, lost connections), and the
// transaction runner: commit, rollback, panics, savepoints, and retries
// forced with real conflicts (deadlocks, serialization failures, SQLITE_BUSY).
package dialecttest

import (
	"testing"
	"time"

	"github.com/racefree/racefree/internal/testdb"
)

// Run runs the conformance suite against the named engine ("postgres",
// "mysql" or "sqlite").
func Run(t *testing.T, engine string) {
	e, ok := testdb.Get(engine)
	if !ok {
		t.Fatalf("dialecttest: unknown engine %q", engine)
	}
	e.Require(t)
	testdb.Watchdog(t, 3*time.Minute)
	t.Run("Quote", func(t *testing.T) { testQuote(t, e) })
	t.Run("Detect", func(t *testing.T) { testDetect(t, e) })
	t.Run("ClassifyUniqueViolation", func(t *testing.T) { testClassifyUnique(t, e) })
	t.Run("ClassifyIntegrity", func(t *testing.T) { testClassifyIntegrity(t, e) })
	t.Run("ClassifyLockTimeout", func(t *testing.T) { testClassifyLockTimeout(t, e) })
	t.Run("ClassifyCanceled", func(t *testing.T) { testClassifyCanceled(t, e) })
	t.Run("ClassifyConnectionLost", func(t *testing.T) { testClassifyConnectionLost(t, e) })
	t.Run("RunInTxCommits", func(t *testing.T) { testRunInTxCommits(t, e) })
	t.Run("RunInTxRollsBackOnError", func(t *testing.T) { testRunInTxRollsBack(t, e) })
	t.Run("RunInTxRollsBackOnPanic", func(t *testing.T) { testRunInTxPanic(t, e) })
	t.Run("RunInTxNestedSavepoint", func(t *testing.T) { testRunInTxNested(t, e) })
	t.Run("RunInTxOnConnAndWrappedTx", func(t *testing.T) { testRunInTxConnAndWrapped(t, e) })
	t.Run("RetryDeadlock", func(t *testing.T) { testRetryDeadlock(t, e) })
	t.Run("RetrySerializationFailure", func(t *testing.T) { testRetrySerialization(t, e) })
	t.Run("RetryWriteConflict", func(t *testing.T) { testRetryWriteConflict(t, e) })
	t.Run("RetryBusy", func(t *testing.T) { testRetryBusy(t, e) })
	t.Run("CommitOutcomeUnknown", func(t *testing.T) { testCommitUnknown(t, e) })
}
