package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

// Defaults of the ratio phase.
const (
	DefaultRounds  = 10
	DefaultSegment = 500 * time.Millisecond
)

// MeasureConfig says how long and how often the two sides of a case run.
type MeasureConfig struct {
	// Rounds is the number of racefree segments, hence of ratios; the
	// raw side runs one segment more. At least 2.
	Rounds int
	// Segment is how long each segment runs.
	Segment time.Duration
	// Warmup is how long each side runs, unmeasured, before the rounds:
	// racefree plans its statements and fills its caches on first use,
	// and the raw side's connections and the engine's caches warm up.
	Warmup time.Duration
	// Confidence is the level of the ratio's interval.
	Confidence float64
	// Seed seeds the goroutines' random sources.
	Seed uint64
	// Classify names an error's class; nil names them all "error".
	Classify func(error) string
	// Step, if set, is called after every segment, warm-ups included.
	Step func(side Side, round int)
}

// Steps is the number of times Measure calls cfg.Step: the progress a
// case makes.
func (cfg MeasureConfig) Steps() int { return 2 + 2*cfg.Rounds + 1 }

// Alternate runs rounds racefree segments and rounds+1 raw segments in
// strict alternation, raw first and last: raw, racefree, raw, …, racefree,
// raw. It stops at the first error, or when ctx ends.
func Alternate(ctx context.Context, rounds int, run func(side Side, round int) (lab.Part, error)) (raw, rf []lab.Part, err error) {
	for i := 0; i <= rounds; i++ {
		for _, s := range []Side{Raw, Racefree} {
			if s == Racefree && i == rounds {
				break
			}
			if err := ctx.Err(); err != nil {
				return raw, rf, err
			}
			p, err := run(s, i)
			if err != nil {
				return raw, rf, err
			}
			if s == Raw {
				raw = append(raw, p)
			} else {
				rf = append(rf, p)
			}
		}
	}
	return raw, rf, nil
}

// Measure runs the two sides of c in alternating segments (see Alternate)
// and returns the ratio of their throughputs with its interval, and each
// side's throughput and latency over all its segments.
func Measure(ctx context.Context, c *Case, pair Pair, cfg MeasureConfig) (CaseResult, error) {
	if cfg.Rounds < 2 {
		return CaseResult{}, fmt.Errorf("bench: %d rounds; a confidence interval needs at least 2", cfg.Rounds)
	}
	if cfg.Segment <= 0 {
		return CaseResult{}, fmt.Errorf("bench: segment length %v is not positive", cfg.Segment)
	}
	step := func(s Side, i int) {
		if cfg.Step != nil {
			cfg.Step(s, i)
		}
	}
	workers := [2][]*Worker{
		Raw:      NewWorkers(c.Goroutines, cfg.Seed),
		Racefree: NewWorkers(c.Goroutines, cfg.Seed+1),
	}
	segment := func(s Side, d time.Duration) (lab.Part, error) {
		p := Segment(ctx, pair.Op(s), workers[s], d, cfg.Classify)
		if p.Interrupted {
			return p, ctx.Err()
		}
		if p.OK == 0 {
			return p, fmt.Errorf("the %s side completed no call in %v%s", s, d, firstError(p))
		}
		return p, nil
	}
	for _, s := range []Side{Raw, Racefree} {
		if cfg.Warmup > 0 {
			if _, err := segment(s, cfg.Warmup); err != nil {
				return CaseResult{}, fmt.Errorf("warm-up: %w", err)
			}
		}
		step(s, -1)
	}
	rawParts, rfParts, err := Alternate(ctx, cfg.Rounds, func(s Side, i int) (lab.Part, error) {
		p, err := segment(s, cfg.Segment)
		if err != nil {
			return p, fmt.Errorf("round %d: %w", i+1, err)
		}
		step(s, i)
		return p, nil
	})
	if err != nil {
		return CaseResult{}, err
	}
	ratios, err := RoundRatios(throughputs(rawParts), throughputs(rfParts))
	if err != nil {
		return CaseResult{}, err
	}
	iv, err := RatioInterval(ratios, cfg.Confidence)
	if err != nil {
		return CaseResult{}, err
	}
	return CaseResult{
		Name: c.Name, Title: c.Title, Racefree: c.Racefree, Raw: c.Raw, RawSQL: pair.RawSQL,
		Goroutines: c.Goroutines,
		Ratio:      iv.Estimate, RatioLo: iv.Lo, RatioHi: iv.Hi, Confidence: iv.Level,
		RoundRatios:   ratios,
		RacefreeStats: SequentialStats(rfParts...),
		RawStats:      SequentialStats(rawParts...),
		Verdict:       iv.Verdict(),
	}, nil
}

func throughputs(ps []lab.Part) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = Throughput(p.OK, p.Elapsed.Seconds())
	}
	return out
}

// firstError returns ": " and one error sample of p, or "".
func firstError(p lab.Part) string {
	for c, s := range p.Samples {
		return fmt.Sprintf(": %d calls failed, %s: %s", p.ErrorCount(), c, s)
	}
	return ""
}
