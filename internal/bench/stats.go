package bench

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultConfidence is the level of the ratio intervals.
const DefaultConfidence = 0.95

// RoundRatios returns one ratio per racefree segment from strictly
// alternating segments raw[0], rf[0], raw[1], rf[1], …, rf[n-1], raw[n]:
// racefree's throughput in segment i over the mean raw throughput of the
// segments just before and just after it. A speed that drifts linearly
// over the run hits the racefree segment and the mean of its two raw
// neighbours alike, so it cancels out of the ratio; taking only the raw
// segment before would let the drift pass for a difference. Needs
// len(raw) == len(rf)+1 and positive throughputs.
func RoundRatios(raw, rf []float64) ([]float64, error) {
	if len(rf) == 0 || len(raw) != len(rf)+1 {
		return nil, fmt.Errorf("bench: %d raw and %d racefree segments; want n+1 and n, n ≥ 1", len(raw), len(rf))
	}
	out := make([]float64, len(rf))
	for i, r := range rf {
		base := (raw[i] + raw[i+1]) / 2
		if !(r > 0) || !(base > 0) || math.IsInf(r, 0) || math.IsInf(base, 0) {
			return nil, fmt.Errorf("bench: round %d: throughputs must be positive and finite (racefree %v, raw %v and %v)", i+1, r, raw[i], raw[i+1])
		}
		out[i] = r / base
	}
	return out, nil
}

// Interval is an estimate of a ratio with its confidence interval.
type Interval struct {
	// Estimate is the geometric mean of the ratios.
	Estimate float64
	// Lo and Hi bound the interval; Lo ≤ Estimate ≤ Hi.
	Lo, Hi float64
	// Level is the confidence level, for example 0.95.
	Level float64
	// N is the number of ratios.
	N int
}

// RatioInterval estimates the typical ratio from per-round ratios and its
// confidence interval: a Student t interval over the logarithms of the
// ratios, exponentiated. Ratios are multiplicative — 0.5 and 2 are equally
// far from 1 — so the logarithm is the scale on which their noise is
// symmetric, and the interval is symmetric around the estimate in the
// same sense. The t distribution accounts for the few rounds a bench can
// afford (with 4 rounds the interval is 1.6 times as wide as a normal one
// would claim). Needs at least 2 positive, finite ratios and 0 < level < 1.
func RatioInterval(ratios []float64, level float64) (Interval, error) {
	n := len(ratios)
	if n < 2 {
		return Interval{}, fmt.Errorf("bench: a confidence interval needs at least 2 rounds, got %d", n)
	}
	if !(level > 0 && level < 1) {
		return Interval{}, fmt.Errorf("bench: confidence level %v is not between 0 and 1", level)
	}
	logs := make([]float64, n)
	for i, r := range ratios {
		if !(r > 0) || math.IsInf(r, 0) {
			return Interval{}, fmt.Errorf("bench: round %d has ratio %v; ratios must be positive and finite", i+1, r)
		}
		logs[i] = math.Log(r)
	}
	mean, sd := stat.MeanStdDev(logs, nil) // sd: the unbiased (n-1) estimate
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(1 - (1-level)/2)
	half := t * sd / math.Sqrt(float64(n))
	return Interval{
		Estimate: math.Exp(mean),
		Lo:       math.Exp(mean - half),
		Hi:       math.Exp(mean + half),
		Level:    level,
		N:        n,
	}, nil
}

// Verdict says in words what an interval shows about racefree against the
// raw statements.
func (iv Interval) Verdict() string {
	switch {
	case iv.Lo <= 1 && iv.Hi >= 1:
		return "no difference this run can tell from noise"
	case iv.Hi < 1:
		return fmt.Sprintf("racefree slower: %.0f–%.0f %% of raw throughput", 100*iv.Lo, 100*iv.Hi)
	default:
		return fmt.Sprintf("racefree faster: %.2f–%.2f× raw throughput", iv.Lo, iv.Hi)
	}
}

// Throughput is calls that succeeded per second of a segment.
func Throughput(ok int64, elapsedSeconds float64) float64 {
	if elapsedSeconds <= 0 {
		return 0
	}
	return float64(ok) / elapsedSeconds
}
