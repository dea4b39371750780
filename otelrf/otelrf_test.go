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
