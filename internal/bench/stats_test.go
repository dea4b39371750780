package bench

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestRoundRatios_DriftCancels(t *testing.T) {
	// The machine speeds up by 5 % per segment while racefree runs at
	// exactly 0.8 of raw's speed. Segments alternate raw, racefree, …,
	// raw, so segment k runs at speed(k).
	speed := func(k int) float64 { return 1000 * (1 + 0.05*float64(k)) }
	const rounds, want = 6, 0.8
	var raw, rf []float64
	for i := 0; i <= rounds; i++ {
		raw = append(raw, speed(2*i))
		if i < rounds {
			rf = append(rf, want*speed(2*i+1))
		}
	}
	got, err := RoundRatios(raw, rf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != rounds {
		t.Fatalf("%d ratios, want %d", len(got), rounds)
	}
	for i, r := range got {
		if math.Abs(r-want) > 1e-12 {
			t.Errorf("round %d: ratio %v, want %v: the drift did not cancel", i+1, r, want)
		}
		// Comparing with the raw segment before only would see the drift
		// as racefree being faster than it is.
		if naive := rf[i] / raw[i]; math.Abs(naive-want) < 1e-3 {
			t.Errorf("round %d: the naive ratio %v shows no drift; the test does not test anything", i+1, naive)
		}
	}
}

func TestRoundRatios_Errors(t *testing.T) {
	tests := []struct {
		name    string
		raw, rf []float64
		want    string
	}{
		{"NoRounds", []float64{1}, nil, "segments"},
		{"RawNotOneMore", []float64{1, 1}, []float64{1, 1}, "segments"},
		{"ZeroRaw", []float64{0, 0}, []float64{1}, "positive"},
		{"ZeroRacefree", []float64{1, 1}, []float64{0}, "positive"},
		{"NaN", []float64{1, math.NaN()}, []float64{1}, "positive"},
		{"Inf", []float64{1, 1}, []float64{math.Inf(1)}, "positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RoundRatios(tc.raw, tc.rf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRatioInterval_Known(t *testing.T) {
	// Logs -0.2 … 0.2: mean 0, sample standard deviation √(0.1/4); the
	// 97.5 % quantile of Student's t with 4 degrees of freedom is
	// 2.776445105…
	logs := []float64{-0.1, 0, 0.1, 0.2, -0.2}
	ratios := make([]float64, len(logs))
	for i, l := range logs {
		ratios[i] = math.Exp(l)
	}
	iv, err := RatioInterval(ratios, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	half := 2.776445105197793 * math.Sqrt(0.1/4) / math.Sqrt(5)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"estimate", iv.Estimate, 1},
		{"lo", iv.Lo, math.Exp(-half)},
		{"hi", iv.Hi, math.Exp(half)},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if iv.N != 5 || iv.Level != 0.95 {
		t.Errorf("N, Level = %d, %v", iv.N, iv.Level)
	}
}

func TestRatioInterval_NoNoise(t *testing.T) {
	iv, err := RatioInterval([]float64{0.7, 0.7, 0.7}, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(iv.Estimate-0.7) > 1e-12 || math.Abs(iv.Lo-0.7) > 1e-12 || math.Abs(iv.Hi-0.7) > 1e-12 {
		t.Fatalf("interval %+v, want 0.7 with no width", iv)
	}
}

// TestRatioInterval_Coverage checks the statistics themselves: with
// log-normal noise, 95 % intervals from 5 rounds contain the true ratio in
// about 95 % of runs — neither the 80 % a normal interval would give with
// so few rounds, nor a needlessly wide 99 %.
func TestRatioInterval_Coverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const runs, rounds, truth, sigma = 4000, 5, 0.9, 0.15
	hits := 0
	for range runs {
		ratios := make([]float64, rounds)
		for i := range ratios {
			ratios[i] = truth * math.Exp(sigma*rng.NormFloat64())
		}
		iv, err := RatioInterval(ratios, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		if iv.Lo <= truth && truth <= iv.Hi {
			hits++
		}
	}
	if cov := float64(hits) / runs; cov < 0.935 || cov > 0.965 {
		t.Fatalf("coverage %.3f, want about 0.95", cov)
	}
}

func TestRatioInterval_Errors(t *testing.T) {
	tests := []struct {
		name   string
		ratios []float64
		level  float64
		want   string
	}{
		{"OneRound", []float64{1}, 0.95, "at least 2"},
		{"LevelOne", []float64{1, 1}, 1, "between 0 and 1"},
		{"LevelZero", []float64{1, 1}, 0, "between 0 and 1"},
		{"Negative", []float64{1, -1}, 0.95, "positive"},
		{"Zero", []float64{1, 0}, 0.95, "positive"},
		{"Inf", []float64{1, math.Inf(1)}, 0.95, "positive"},
		{"NaN", []float64{math.NaN(), 1}, 0.95, "positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RatioInterval(tc.ratios, tc.level)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestInterval_Verdict(t *testing.T) {
	tests := []struct {
		iv   Interval
		want string
	}{
		{Interval{Estimate: 1, Lo: 0.9, Hi: 1.1}, "no difference"},
		{Interval{Estimate: 0.8, Lo: 0.7, Hi: 0.9}, "racefree slower: 70–90 %"},
		{Interval{Estimate: 30, Lo: 20, Hi: 40}, "racefree faster: 20.00–40.00×"},
	}
	for _, tc := range tests {
		if got := tc.iv.Verdict(); !strings.Contains(got, tc.want) {
			t.Errorf("Verdict(%+v) = %q, want %q in it", tc.iv, got, tc.want)
		}
	}
}
