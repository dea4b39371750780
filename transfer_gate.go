package racefree

import (
	"context"
	"sync"

	"github.com/racefree/racefree/dialect"
)

// writerGate lets one of this process's transfers at a time run its
// statement on an embedded engine with one writer (SQLite). The engine's
// write lock decides who writes — the gate gives no correctness, and
// other processes are not queued by it — but goroutines that would each
// wait for that lock in the engine's busy handler, which sleeps in steps
// of milliseconds however soon the lock is free, instead queue here and
// are woken as soon as the previous transfer is done.
type writerGate struct {
	once sync.Once
	ch   chan struct{} // a token per free slot: one
}

// gated reports whether db's transfers go through the gate.
func (db *DB) gated() bool {
	f := db.d.Features()
	return f.Has(dialect.SingleWriter) && f.Has(dialect.Embedded)
}

// enter waits for the gate or for ctx to end.
func (g *writerGate) enter(ctx context.Context) error {
	g.once.Do(func() { g.ch = make(chan struct{}, 1) })
	select {
	case g.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave frees the gate.
func (g *writerGate) leave() { <-g.ch }
