package dialect

import (
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Opener opens a database from a DSN and returns it with a fresh Dialect for
// it (not yet detected).
type Opener func(dsn string) (*sql.DB, Dialect, error)

var (
	registryMu sync.RWMutex // guards registry
	registry   = map[string]Opener{}
)

// Register makes an Opener available to racefree.Open under a DSN scheme
// ("postgres", "mysql", "sqlite"). The dialect packages call it from init, so
// importing one for its side effect is enough. Registering a scheme twice
// panics, as with database/sql.Register.
func Register(scheme string, open Opener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if open == nil {
		panic("racefree: Register opener is nil")
	}
	if _, dup := registry[scheme]; dup {
		panic("racefree: Register called twice for scheme " + scheme)
	}
	registry[scheme] = open
}

// Lookup returns the Opener registered for scheme.
func Lookup(scheme string) (Opener, error) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	if o, ok := registry[scheme]; ok {
		return o, nil
	}
	pkg := map[string]string{"postgres": "pgdialect", "mysql": "mysqldialect", "sqlite": "sqlitedialect"}[scheme]
	if pkg != "" {
		return nil, fmt.Errorf("racefree: no dialect registered for %q: import _ \"github.com/racefree/racefree/dialect/%s\"", scheme, pkg)
	}
	return nil, fmt.Errorf("racefree: unknown DSN scheme %q (known: postgres, mysql, sqlite)", scheme)
}

// Schemes lists the registered schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	var s []string
	for k := range registry {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// SchemeOf returns the registry key (see Register) of the dialect a DSN
// names: its URL scheme, lower-cased ("postgres://…"), "mysql" for
// go-sql-driver's form ("user@tcp(host)/db"), and "sqlite" for "sqlite:",
// "file:" and a bare file path.
func SchemeOf(dsn string) (string, error) {
	switch {
	case dsn == "":
		return "", errors.New("empty DSN")
	case strings.Contains(dsn, "://"):
		return strings.ToLower(dsn[:strings.Index(dsn, "://")]), nil
	case strings.Contains(dsn, "@tcp(") || strings.Contains(dsn, "@unix("):
		return "mysql", nil
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasPrefix(dsn, "file:"):
		return "sqlite", nil
	}
	if i := strings.IndexByte(dsn, ':'); i > 0 && !strings.ContainsAny(dsn[:i], `/\.`) && dsn != ":memory:" {
		return "", fmt.Errorf("unknown DSN scheme %q (known: postgres://, mysql://, sqlite:)", dsn[:i])
	}
	return "sqlite", nil // a bare file path
}
