package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints r as aligned plain-text tables: the ratio of every
// case, then each scaling curve with its verdict.
func WriteTable(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	s := r.Settings
	fmt.Fprintf(ew, "racefree bench on %s — %d CPUs, %s\n", r.Server, r.CPUs, r.GoVersion)
	fmt.Fprintf(ew, "%s\n", r.Command)
	fmt.Fprintf(ew, "ratio = racefree ÷ raw throughput, measured in %d alternating rounds of %v per side; %.0f %% interval\n\n",
		s.Rounds, msText(s.SegmentMS), 100*s.Confidence)

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tratio\tinterval\tracefree/s\traw/s\tp50 µs rf\tp50 µs raw\tp99 µs rf\tp99 µs raw\terrors rf/raw\t")
	for _, c := range r.Cases {
		if !c.Measured() {
			continue // said below the table, where a long reason cannot widen a column
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f–%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Name,
			c.Ratio, c.RatioLo, c.RatioHi,
			rate(c.RacefreeStats.OpsPerSec), rate(c.RawStats.OpsPerSec),
			us(c.RacefreeStats.P50us), us(c.RawStats.P50us), us(c.RacefreeStats.P99us), us(c.RawStats.P99us),
			errorsText(c.RacefreeStats, c.RawStats))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(ew)
	for _, c := range r.Cases {
		switch {
		case c.Error != "":
			fmt.Fprintf(ew, "  %-18s FAILED: %s\n", c.Name, c.Error)
		case c.Skipped != "":
			fmt.Fprintf(ew, "  %-18s skipped: %s\n", c.Name, c.Skipped)
		default:
			fmt.Fprintf(ew, "  %-18s %s vs %s: %s\n", c.Name, c.Racefree, c.Raw, c.Verdict)
		}
	}

	for _, sc := range r.Scaling {
		fmt.Fprintf(ew, "\nscaling: %s, more %s, %v per side per point\n", sc.Case, sc.Axis, msText(s.ScaleMS))
		if sc.Error != "" && len(sc.Points) == 0 {
			fmt.Fprintf(ew, "  FAILED: %s\n", sc.Error)
			continue
		}
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "procs×goroutines\tracefree/s\tp99 ms rf\traw/s\tp99 ms raw\tratio\terrors rf/raw\t")
		for _, p := range sc.Points {
			fmt.Fprintf(tw, "%d×%d\t%s\t%.2f\t%s\t%.2f\t%.2f\t%s\t\n", p.Procs, p.Goroutines,
				rate(p.Racefree.OpsPerSec), p.Racefree.P99us/1000, rate(p.Raw.OpsPerSec), p.Raw.P99us/1000, p.Ratio,
				errorsText(p.Racefree, p.Raw))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if sc.Error != "" {
			fmt.Fprintf(ew, "  FAILED: %s\n", sc.Error)
		} else {
			fmt.Fprintf(ew, "  %s\n", sc.Verdict)
		}
	}
	if r.Interrupted {
		fmt.Fprintln(ew, "\ninterrupted: the run stopped before its end; the figures above are what it measured")
	}
	return ew.err
}

// errWriter keeps the first write error, so that the table code reads
// straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func rate(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func us(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func msText(ms float64) string {
	if ms >= 1000 {
		return strings.TrimSuffix(fmt.Sprintf("%.1f", ms/1000), ".0") + "s"
	}
	return fmt.Sprintf("%.0fms", ms)
}

func errorsText(rf, raw SideStats) string {
	if rf.Errors == 0 && raw.Errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d / %d", rf.Errors, raw.Errors)
}

func formatPct(v float64) string { return fmt.Sprintf("%.0f %%", 100*v) }
