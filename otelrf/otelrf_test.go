package otelrf_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/otelrf"
)

// TestObserver_LostRacesBecomeMetricsAndSpanEvents races CreateOrGet calls
// on SQLite and checks that the lost races show up as a counter with
// bounded attributes and as events on the active span.
func TestObserver_LostRacesBecomeMetricsAndSpanEvents(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	obs, err := otelrf.New(mp)
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	ctx, span := tp.Tracer("test").Start(context.Background(), "storm")

	db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "otel.db"), racefree.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	// A lost race needs a winner first: the row exists, so CreateOrGet's
	// INSERT is refused and the re-read finds it.
	if _, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, "tags", racefree.Values{"name": "go"}, nil, racefree.Options{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := racefree.CreateOrGet[racefree.Values](ctx, db, "tags", racefree.Values{"name": "go"}, nil, racefree.Options{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	span.End()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var lost int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "racefree.lost_races" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				lost += dp.Value
				if v, _ := dp.Attributes.Value(attribute.Key("db.system.name")); v.AsString() != "sqlite" {
					t.Errorf("db.system.name = %q", v.AsString())
				}
				if v, _ := dp.Attributes.Value(attribute.Key("db.collection.name")); v.AsString() != "tags" {
					t.Errorf("db.collection.name = %q", v.AsString())
				}
			}
		}
	}
	if lost != 8 {
		t.Fatalf("racefree.lost_races = %d, want 8", lost)
	}
	events := 0
	for _, s := range spans.Ended() {
		for _, ev := range s.Events() {
			if ev.Name == "racefree.lost_race" {
				events++
			}
		}
	}
	if events != 8 {
		t.Fatalf("%d span events, want 8", events)
	}
}

// TestObserver_SharedCommits runs concurrent transfers on SQLite, where
// those arriving while one writes share a transaction, and checks that the
// shared transactions show up as a histogram of their sizes.
func TestObserver_SharedCommits(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	obs, err := otelrf.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "shared.db"), racefree.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);"+
		"INSERT INTO accounts VALUES (1, 1000000), (2, 1000000), (3, 1000000)"); err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 16, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				from := int64((g+i)%3 + 1)
				if err := racefree.Transfer(ctx, db, "accounts", "balance", from, from%3+1, 1, racefree.TransferOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var txs uint64
	var transfers int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "racefree.transfer.shared" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
				txs += dp.Count
				transfers += dp.Sum
				if v, _ := dp.Attributes.Value(attribute.Key("db.collection.name")); v.AsString() != "accounts" {
					t.Errorf("db.collection.name = %q", v.AsString())
				}
				if v, _ := dp.Attributes.Value(attribute.Key("racefree.committed")); !v.AsBool() {
					t.Errorf("a shared transaction failed")
				}
			}
		}
	}
	if txs == 0 || transfers < 2*int64(txs) || transfers > goroutines*each {
		t.Fatalf("%d shared transactions of %d transfers in all, of %d transfers", txs, transfers, goroutines*each)
	}
	t.Logf("%d of %d transfers in %d shared transactions", transfers, goroutines*each, txs)
}
