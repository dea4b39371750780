// Package otelrf turns racefree's events (racefree.Observer) into
// OpenTelemetry metrics and span events. It lives in a module of its own,
// so that a program that does not use OpenTelemetry never downloads it.
//
//	obs, err := otelrf.New(otel.GetMeterProvider())
//	db, err := racefree.Open(ctx, dsn, racefree.WithObserver(obs))
//
// Metrics (attribute names follow OpenTelemetry's database semantic
// conventions where one applies; every label set is bounded: engine,
// error class, lock kind, table and verb — never a lock name or a value):
//
//	racefree.tx.retries           counter  db.system.name, error.type
//	racefree.tx.gave_up           counter  db.system.name, error.type
//	racefree.lost_races           counter  db.system.name, db.collection.name, racefree.verb
//	racefree.lock.wait.duration   histogram (s)  db.system.name, racefree.lock.kind, racefree.lock.acquired
//	racefree.lock.hold.duration   histogram (s)  db.system.name, racefree.lock.kind
//	racefree.lease.lost           counter  db.system.name
//	racefree.commit.unknown       counter  db.system.name
//	racefree.transfer.shared      histogram ({transfer})  db.system.name, db.collection.name, racefree.committed
//
// Each event is also added to the span active in the operation's context,
// if it is recording, as an event named "racefree.<kind>" with the same
// attributes and, where they apply, the attempt, the delay and the lock's
// name.
package otelrf

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/racefree/racefree"
)

// scope is the instrumentation scope of the meter.
const scope = "github.com/racefree/racefree/otelrf"

// Observer records racefree's events with OpenTelemetry. It is safe for
// concurrent use.
type Observer struct {
	retries, gaveUp, lostRaces, leaseLost, commitUnknown metric.Int64Counter
	lockWait, lockHold                                   metric.Float64Histogram
	shared                                               metric.Int64Histogram
}

var _ racefree.Observer = (*Observer)(nil)

// New creates the instruments on mp's meter for racefree.
func New(mp metric.MeterProvider) (*Observer, error) {
	m := mp.Meter(scope)
	o := &Observer{}
	var err error
	counter := func(dst *metric.Int64Counter, name, desc string) {
		if err == nil {
			*dst, err = m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{event}"))
		}
	}
	counter(&o.retries, "racefree.tx.retries", "Transaction attempts that failed with a retryable error and ran again.")
	counter(&o.gaveUp, "racefree.tx.gave_up", "Transactions whose retries stopped: budget spent or context ended.")
	counter(&o.lostRaces, "racefree.lost_races", "Get-or-create calls that lost the race to create a row and returned the winner's.")
	counter(&o.leaseLost, "racefree.lease.lost", "Leases found lost.")
	counter(&o.commitUnknown, "racefree.commit.unknown", "COMMITs whose outcome is unknown.")
	histogram := func(dst *metric.Float64Histogram, name, desc string) {
		if err == nil {
			*dst, err = m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"))
		}
	}
	histogram(&o.lockWait, "racefree.lock.wait.duration", "Time waited for a lock, granted or not.")
	histogram(&o.lockHold, "racefree.lock.hold.duration", "Time a lock was held.")
	if err == nil {
		o.shared, err = m.Int64Histogram("racefree.transfer.shared", metric.WithUnit("{transfer}"),
			metric.WithDescription("Transfers run in one shared transaction behind busy rows, per shared transaction."))
	}
	if err != nil {
		return nil, fmt.Errorf("otelrf: create instruments: %w", err)
	}
	return o, nil
}

// dbSystem maps racefree's engine names to OpenTelemetry's db.system.name
// values.
func dbSystem(engine string) string {
	switch engine {
	case "postgres":
		return "postgresql"
	case "":
		return "other_sql"
	}
	return engine
}

// Observe records one event.
func (o *Observer) Observe(ctx context.Context, e racefree.Event) {
	base := []attribute.KeyValue{attribute.String("db.system.name", dbSystem(e.Engine))}
	var attrs []attribute.KeyValue
	switch e.Kind {
	case racefree.EventTxRetry:
		attrs = append(base, attribute.String("error.type", e.Class.String()))
		o.retries.Add(ctx, 1, metric.WithAttributes(attrs...))
	case racefree.EventTxGaveUp:
		attrs = append(base, attribute.String("error.type", e.Class.String()))
		o.gaveUp.Add(ctx, 1, metric.WithAttributes(attrs...))
	case racefree.EventLostRace:
		attrs = append(base, attribute.String("db.collection.name", e.Table), attribute.String("racefree.verb", e.Verb))
		o.lostRaces.Add(ctx, 1, metric.WithAttributes(attrs...))
	case racefree.EventLockAcquired, racefree.EventLockNotAcquired:
		attrs = append(base, attribute.String("racefree.lock.kind", e.LockKind), attribute.Bool("racefree.lock.acquired", e.Kind == racefree.EventLockAcquired))
		o.lockWait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(attrs...))
	case racefree.EventLockReleased:
		attrs = append(base, attribute.String("racefree.lock.kind", e.LockKind))
		o.lockHold.Record(ctx, e.Held.Seconds(), metric.WithAttributes(attrs...))
	case racefree.EventLeaseLost:
		attrs = base
		o.leaseLost.Add(ctx, 1, metric.WithAttributes(attrs...))
	case racefree.EventCommitUnknown:
		attrs = base
		o.commitUnknown.Add(ctx, 1, metric.WithAttributes(attrs...))
	case racefree.EventSharedCommit:
		attrs = append(base, attribute.String("db.collection.name", e.Table), attribute.Bool("racefree.committed", e.Err == nil))
		o.shared.Record(ctx, int64(e.Transfers), metric.WithAttributes(attrs...))
	default:
		attrs = base
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if e.Attempt != 0 {
		attrs = append(attrs, attribute.Int("racefree.attempt", e.Attempt))
	}
	if e.Delay != 0 {
		attrs = append(attrs, attribute.Float64("racefree.delay_s", e.Delay.Seconds()))
	}
	if e.Lock != "" {
		attrs = append(attrs, attribute.String("racefree.lock.name", e.Lock))
	}
	if e.Held != 0 {
		attrs = append(attrs, attribute.Float64("racefree.held_s", e.Held.Seconds()))
	}
	if e.Err != nil {
		attrs = append(attrs, attribute.String("exception.message", e.Err.Error()))
	}
	span.AddEvent("racefree."+strings.ReplaceAll(e.Kind.String(), " ", "_"), trace.WithAttributes(attrs...))
}
