package racefree

import (
	"context"
	"log/slog"
)

// SlogObserver returns an Observer that writes each event to logger: lost
// races, acquired and released locks, shared commits at Debug; retries and locks not
// acquired at Info; retries given up, lost leases and commits of unknown
// outcome at Warn. Each record carries the event's fields as attributes
// (racefree.event, db.system, and those that apply).
func SlogObserver(logger *slog.Logger) Observer { return slogObserver{logger} }

type slogObserver struct{ l *slog.Logger }

func (o slogObserver) Observe(ctx context.Context, e Event) {
	level := slog.LevelDebug
	switch e.Kind {
	case EventTxRetry, EventLockNotAcquired:
		level = slog.LevelInfo
	case EventTxGaveUp, EventLeaseLost, EventCommitUnknown:
		level = slog.LevelWarn
	}
	if !o.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("racefree.event", e.Kind.String()), slog.String("db.system", e.Engine))
	add := func(a slog.Attr, ok bool) {
		if ok {
			attrs = append(attrs, a)
		}
	}
	add(slog.String("db.collection.name", e.Table), e.Table != "")
	add(slog.String("racefree.verb", e.Verb), e.Verb != "")
	add(slog.String("racefree.constraint", e.Constraint), e.Constraint != "")
	add(slog.String("racefree.lock", e.Lock), e.Lock != "")
	add(slog.String("racefree.lock_kind", e.LockKind), e.LockKind != "")
	add(slog.Int("racefree.attempt", e.Attempt), e.Attempt != 0)
	add(slog.String("error.type", e.Class.String()), e.Err != nil)
	add(slog.Any("error", e.Err), e.Err != nil)
	add(slog.Duration("racefree.delay", e.Delay), e.Delay != 0)
	add(slog.Duration("racefree.wait", e.Wait), e.Wait != 0)
	add(slog.Duration("racefree.held", e.Held), e.Held != 0)
	add(slog.Int("racefree.transfers", e.Transfers), e.Transfers != 0)
	o.l.LogAttrs(ctx, level, "racefree: "+e.Kind.String(), attrs...)
}
