package bench

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

func TestAlternate_Order(t *testing.T) {
	var got []string
	raw, rf, err := Alternate(context.Background(), 3, func(s Side, i int) (lab.Part, error) {
		got = append(got, s.String()+string(rune('0'+i)))
		return lab.Part{OK: int64(i)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"raw0", "racefree0", "raw1", "racefree1", "raw2", "racefree2", "raw3"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if len(raw) != 4 || len(rf) != 3 {
		t.Fatalf("%d raw and %d racefree parts, want 4 and 3", len(raw), len(rf))
	}
}

func TestAlternate_Stops(t *testing.T) {
	t.Run("Error", func(t *testing.T) {
		boom := errors.New("boom")
		n := 0
		_, _, err := Alternate(context.Background(), 5, func(s Side, i int) (lab.Part, error) {
			n++
			if n == 3 {
				return lab.Part{}, boom
			}
			return lab.Part{}, nil
		})
		if !errors.Is(err, boom) || n != 3 {
			t.Fatalf("err = %v after %d segments, want boom after 3", err, n)
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		_, _, err := Alternate(ctx, 5, func(s Side, i int) (lab.Part, error) {
			n++
			cancel()
			return lab.Part{}, nil
		})
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Fatalf("err = %v after %d segments, want canceled after 1", err, n)
		}
	})
}

// sleeper is a side whose calls take d.
func sleeper(d time.Duration) Op {
	return func(ctx context.Context, _ *Worker) error {
		time.Sleep(d)
		return nil
	}
}

func TestMeasure(t *testing.T) {
	c := &Case{Name: "fake", Title: "fake", Goroutines: 2}
	// The racefree side's calls take 20 times as long as the raw side's:
	// far enough apart that a loaded machine, which stretches every sleep
	// by milliseconds, cannot turn the ratio around.
	pair := Pair{Raw: sleeper(time.Millisecond), Racefree: sleeper(20 * time.Millisecond), RawSQL: "SELECT 1"}
	var steps []string
	cfg := MeasureConfig{Rounds: 3, Segment: 100 * time.Millisecond, Warmup: 10 * time.Millisecond, Confidence: 0.9,
		Step: func(s Side, i int) { steps = append(steps, s.String()) }}
	res, err := Measure(context.Background(), c, pair, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The ratio is racefree's throughput over raw's: about 1/20 on a quiet
	// machine, well below 1 on any.
	if res.Ratio <= 0 || res.Ratio > 0.5 {
		t.Errorf("ratio %v, want about 0.05", res.Ratio)
	}
	if !(res.RatioLo <= res.Ratio && res.Ratio <= res.RatioHi) || res.Confidence != 0.9 {
		t.Errorf("interval %v–%v at %v does not hold %v", res.RatioLo, res.RatioHi, res.Confidence, res.Ratio)
	}
	if len(res.RoundRatios) != 3 || res.Goroutines != 2 || res.RawSQL != "SELECT 1" {
		t.Errorf("result %+v", res)
	}
	if len(steps) != cfg.Steps() {
		t.Errorf("%d steps, want %d", len(steps), cfg.Steps())
	}
	for _, s := range []SideStats{res.RacefreeStats, res.RawStats} {
		if err := validSide("side", s); err != nil {
			t.Error(err)
		}
	}
	// The raw side ran one segment more, of 1 ms calls from 2 goroutines.
	if res.RawStats.P50us < 1000 || res.RacefreeStats.P50us < 20000 {
		t.Errorf("p50 raw %v µs, racefree %v µs; want at least 1000 and 20000", res.RawStats.P50us, res.RacefreeStats.P50us)
	}
}

func TestMeasure_FailingSide(t *testing.T) {
	c := &Case{Name: "fake", Title: "fake", Goroutines: 1}
	pair := Pair{
		Raw:      sleeper(time.Millisecond),
		Racefree: func(context.Context, *Worker) error { time.Sleep(time.Millisecond); return errors.New("table gone") },
	}
	_, err := Measure(context.Background(), c, pair, MeasureConfig{Rounds: 2, Segment: 10 * time.Millisecond, Confidence: 0.95})
	if err == nil || !strings.Contains(err.Error(), "racefree side completed no call") || !strings.Contains(err.Error(), "table gone") {
		t.Fatalf("err = %v, want the racefree side named with its error", err)
	}
}

func TestMeasure_BadConfig(t *testing.T) {
	c := &Case{Name: "fake", Title: "fake", Goroutines: 1}
	pair := Pair{Raw: sleeper(0), Racefree: sleeper(0)}
	for _, cfg := range []MeasureConfig{{Rounds: 1, Segment: time.Millisecond}, {Rounds: 2}} {
		if _, err := Measure(context.Background(), c, pair, cfg); err == nil {
			t.Errorf("Measure with %+v: no error", cfg)
		}
	}
}

func TestSegment_CountsErrorsByClass(t *testing.T) {
	n := 0
	op := func(context.Context, *Worker) error {
		n++
		time.Sleep(100 * time.Microsecond)
		if n%2 == 0 {
			return errors.New("busy now")
		}
		return nil
	}
	p := Segment(context.Background(), op, NewWorkers(1, 1), 20*time.Millisecond, func(error) string { return "busy" })
	if p.Ops < 2 || p.OK+p.Errors["busy"] != p.Ops || p.Samples["busy"] != "busy now" {
		t.Fatalf("part %+v", p)
	}
	if st := SequentialStats(p); st.Errors != p.Errors["busy"] || !strings.Contains(st.ErrorSample, "busy now") {
		t.Fatalf("stats %+v", st)
	}
}
