package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/racefree/racefree/internal/lab"
)

// progressSteps is the bar's resolution: its maximum, reached when the
// strategy's duration has passed.
const progressSteps = 1000

// progress draws a one-line bar on a terminal while a strategy runs. On
// anything else it does nothing, so that redirected output holds only the
// results.
type progress struct {
	w        io.Writer
	on       bool
	duration time.Duration

	mu   sync.Mutex // guards done
	done chan struct{}
	wg   sync.WaitGroup
}

func newProgress(w io.Writer, on bool, d time.Duration) *progress {
	return &progress{w: w, on: on, duration: d}
}

// begin starts drawing for a strategy whose workers start at start.
func (p *progress) begin(spec *lab.Spec, start time.Time) {
	if !p.on {
		return
	}
	p.end()
	p.mu.Lock()
	done := make(chan struct{})
	p.done = done
	p.mu.Unlock()
	name := fmt.Sprintf("  %-12s", spec.Strategy)
	bar := progressbar.NewOptions64(progressSteps,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionSetTheme(progressbar.ThemeASCII),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionUseANSICodes(true),
	)
	p.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				// Only this goroutine draws the bar, and it has stopped.
				bar.Clear()
				return
			case <-t.C:
			}
			el := time.Since(start)
			label := "starting"
			if el >= 0 {
				label = fmt.Sprintf("%4.1fs/%v", min(el, p.duration).Seconds(), p.duration)
			}
			// Describe draws the bar with the new label, then Set64 draws it
			// again if it moved. The first drawing is thus never a full bar,
			// which the bar would not measure for Clear.
			bar.Describe(name + " " + label)
			frac := 1.0
			if p.duration > 0 {
				frac = max(0, min(1, float64(el)/float64(p.duration)))
			}
			bar.Set64(int64(frac * progressSteps))
		}
	})
}

// end clears the bar of the strategy that ran.
func (p *progress) end() {
	p.mu.Lock()
	if p.done != nil {
		close(p.done)
		p.done = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *progress) stop() { p.end() }
