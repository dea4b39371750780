package lab

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Chaos is the faults a run injects, as `--chaos kill=2s,cut=3,restart=20s`
// names them. The zero value injects none.
type Chaos struct {
	// Kill is how often a random worker process is killed with SIGKILL
	// (and a replacement started).
	Kill time.Duration
	// Cut is how many connections per second the proxy between the workers
	// and the server resets, on average.
	Cut float64
	// Restart is how often the server is restarted, with the command
	// --restart-cmd names.
	Restart time.Duration
}

// Fault kinds the lab counts itself; the proxy's kinds are in package
// cutproxy.
const (
	FaultKill    = "kill"
	FaultRestart = "restart"
)

// ParseChaos parses a comma-separated list of kind=value: kill=DURATION,
// cut=RATE (per second, "3" or "3/s"), restart=DURATION.
func ParseChaos(s string) (Chaos, error) {
	var c Chaos
	if strings.TrimSpace(s) == "" {
		return c, nil
	}
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return c, fmt.Errorf("chaos %q: want kind=value (kill=2s, cut=3, restart=20s)", item)
		}
		switch k {
		case "kill", "restart":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return c, fmt.Errorf("chaos %s=%s: want a positive duration such as 2s", k, v)
			}
			if k == "kill" {
				c.Kill = d
			} else {
				c.Restart = d
			}
		case "cut":
			r, err := strconv.ParseFloat(strings.TrimSuffix(v, "/s"), 64)
			if err != nil || r <= 0 || r > 1000 {
				return c, fmt.Errorf("chaos cut=%s: want a rate of cuts per second between 0 and 1000, such as 3", v)
			}
			c.Cut = r
		default:
			return c, fmt.Errorf("chaos %q: unknown kind (known: kill, cut, restart)", k)
		}
	}
	return c, nil
}

// Any reports whether some fault is injected.
func (c Chaos) Any() bool { return c.Kill > 0 || c.Cut > 0 || c.Restart > 0 }

// String gives the --chaos value back.
func (c Chaos) String() string {
	var parts []string
	if c.Kill > 0 {
		parts = append(parts, "kill="+c.Kill.String())
	}
	if c.Cut > 0 {
		parts = append(parts, "cut="+strconv.FormatFloat(c.Cut, 'g', -1, 64))
	}
	if c.Restart > 0 {
		parts = append(parts, "restart="+c.Restart.String())
	}
	return strings.Join(parts, ",")
}
