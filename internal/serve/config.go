package serve

import (
	"fmt"
	"regexp"
	"time"
)

// Defaults of the command's flags.
const (
	// DefaultProcs is the number of worker processes: six, as in the classic
	// prefork setup this experiment comes from.
	DefaultProcs = 6
	// DefaultRequests is how many concurrent requests the page's buttons
	// fire.
	DefaultRequests = 10
	// DefaultThink is the naive handlers' pause between their read and
	// each write (see Config.Think).
	DefaultThink = 50 * time.Millisecond
	// DefaultPrefix starts the names of the tables the application creates.
	DefaultPrefix = "racefree_serve"
)

// Limits on input.
const (
	// MaxNameLen is the longest name accepted, in characters.
	MaxNameLen = 100
	// MaxRequests bounds the page's request count.
	MaxRequests = 100
	// MaxThink bounds Config.Think.
	MaxThink = 5 * time.Second
	// MaxProcs bounds the number of worker processes.
	MaxProcs = 64
	// InitialBalance is what each of the two accounts holds after a reset.
	InitialBalance = 1000
	// MaxAmount bounds one transfer.
	MaxAmount = 1_000_000
	// maxBody bounds a request body: the largest valid one is a name of
	// MaxNameLen four-byte characters, JSON-escaped, well under this.
	maxBody = 4 << 10
)

// Config is what every worker process of one server shares.
type Config struct {
	// Procs is the number of worker processes serving the page, shown on
	// it.
	Procs int
	// Requests is the page's default number of concurrent requests per
	// click.
	Requests int
	// Think is how long the naive handlers wait between their read and
	// each write: the time a real handler spends between its statements on
	// other work (rendering, another query, a call to another service). On
	// a fast idle machine the race window of a SELECT followed by an INSERT
	// is a fraction of a millisecond, and the requests of one browser click
	// arrive spread over a few milliseconds, so without it the race shows
	// only now and then. racefree's transfer waits as long at the same
	// places, holding its row locks; its get-or-create, one call with no
	// place for a pause inside, waits as long before the call. 0 disables
	// it.
	Think time.Duration
	// Prefix starts the names of the application's four tables:
	// PREFIX_naive_names, PREFIX_names, PREFIX_naive_accounts and
	// PREFIX_accounts.
	Prefix string
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// withDefaults returns c with every zero field set to its default: the
// zero Config is a working one.
func (c Config) withDefaults() Config {
	if c.Procs == 0 {
		c.Procs = DefaultProcs
	}
	if c.Requests == 0 {
		c.Requests = DefaultRequests
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	return c
}

// Validate checks c as it is: a zero Procs or Requests is an error here
// (New fills in defaults for zero fields before it validates).
func (c Config) Validate() error {
	switch {
	case c.Procs < 1 || c.Procs > MaxProcs:
		return fmt.Errorf("procs must be between 1 and %d, got %d", MaxProcs, c.Procs)
	case c.Requests < 1 || c.Requests > MaxRequests:
		return fmt.Errorf("requests must be between 1 and %d, got %d", MaxRequests, c.Requests)
	case c.Think < 0 || c.Think > MaxThink:
		return fmt.Errorf("think must be between 0 and %v, got %v", MaxThink, c.Think)
	case !prefixRE.MatchString(c.Prefix):
		return fmt.Errorf("prefix %q must be a lower-case letter followed by at most 39 lower-case letters, digits or underscores", c.Prefix)
	}
	return nil
}
