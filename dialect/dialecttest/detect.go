package dialecttest

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/racefree/racefree/dialect"
)

// testDetectServer checks what Detect leaves behind: a name, a server
// description, and features that a second Detect does not change.
func testDetectServer(h *h) {
	if h.d.Name() == "" {
		h.t.Error("Name() is empty")
	}
	if h.d.Server() == "" {
		h.t.Error("Server() is empty after Detect")
	}
	f, server := h.d.Features(), h.d.Server()
	if err := h.d.Detect(h.ctx, h.pool); err != nil {
		h.t.Fatalf("second Detect: %v", err)
	}
	if h.d.Features() != f || h.d.Server() != server {
		h.t.Errorf("a second Detect changed the dialect: %s %b → %s %b", server, f, h.d.Server(), h.d.Features())
	}
	h.t.Logf("%s (%s): features %s", server, h.d.Name(), featureNames(f))
}

// testConcurrentUse calls every read-only method of the detected dialect
// from many goroutines at once: after Detect a Dialect is read-only and
// safe for concurrent use, which the race detector checks here.
func testConcurrentUse(h *h) {
	errs := []error{nil, errors.New("plain"), fmt.Errorf("wrapped: %w", sql.ErrNoRows)}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 50 {
				_ = h.d.Name()
				_ = h.d.Server()
				_ = h.d.Features().Has(dialect.Savepoints)
				_, _ = h.d.Quote("t.x")
				_, _ = h.d.QuoteIdent("c")
				_ = h.d.Placeholder(i + 1)
				_ = h.d.Classify(errs[i%len(errs)])
				if fr, ok := h.d.(dialect.FreshReader); ok {
					_, _ = fr.FreshRead(sql.LevelRepeatableRead, true)
				}
				if uf, ok := h.d.(dialect.UpsertFlagger); ok {
					_, _ = uf.UpsertInserted(`"id"`)
				}
				if bs, ok := h.d.(dialect.BatchSizer); ok {
					_ = bs.BatchParams()
				}
			}
		})
	}
	wg.Wait()
}

// featureNames spells a feature set for the log.
func featureNames(f dialect.Features) string {
	names := []struct {
		f    dialect.Feature
		name string
	}{
		{dialect.Returning, "Returning"}, {dialect.UpdateReturning, "UpdateReturning"},
		{dialect.OnConflict, "OnConflict"}, {dialect.OnDuplicateKey, "OnDuplicateKey"},
		{dialect.Savepoints, "Savepoints"}, {dialect.AdvisoryLocks, "AdvisoryLocks"},
		{dialect.NodeLocalNamedLocks, "NodeLocalNamedLocks"}, {dialect.ForUpdate, "ForUpdate"},
		{dialect.ForShare, "ForShare"}, {dialect.SkipLocked, "SkipLocked"}, {dialect.NoWait, "NoWait"},
		{dialect.NullsNotDistinct, "NullsNotDistinct"}, {dialect.TableLocks, "TableLocks"},
		{dialect.SingleWriter, "SingleWriter"}, {dialect.ClientRetries, "ClientRetries"},
		{dialect.FailedStatementAbortsTx, "FailedStatementAbortsTx"}, {dialect.PrepareOnPool, "PrepareOnPool"},
		{dialect.Embedded, "Embedded"}, {dialect.SerializableIsolation, "SerializableIsolation"},
		{dialect.ReadOnlyTx, "ReadOnlyTx"},
	}
	s := ""
	for _, n := range names {
		if f.Has(n.f) {
			if s != "" {
				s += " "
			}
			s += n.name
		}
	}
	return s
}
