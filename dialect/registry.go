package dialect

import (
	"database/sql"
	"fmt"
	"sort"
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
