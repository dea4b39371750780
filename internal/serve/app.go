package serve

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/racefree/racefree"
)

//go:embed static
var static embed.FS

// App is the web application of one worker process. It is safe for
// concurrent use: it holds only read-only settings and the *racefree.DB,
// itself safe for concurrent use.
type App struct {
	db   *racefree.DB
	cfg  Config
	t    tables
	info Info
}

// Info is what the page shows about the server it talks to.
type Info struct {
	Engine    string `json:"engine"`    // "postgres", "mysql" or "sqlite"
	Server    string `json:"server"`    // e.g. "PostgreSQL 15.19"
	Isolation string `json:"isolation"` // the sessions' default isolation level
	Procs     int    `json:"procs"`
	Requests  int    `json:"requests"`
	ThinkMS   int64  `json:"think_ms"`
	PID       int    `json:"pid"` // this worker process
	Initial   int64  `json:"initial_balance"`
	MaxName   int    `json:"max_name"`
}

// New returns the application over db, whose tables Setup has created.
// Zero fields of cfg take their defaults. ctx governs reading the server's
// isolation level.
func New(ctx context.Context, db *racefree.DB, cfg Config) (*App, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	t, err := tablesFor(db, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	iso, err := Isolation(ctx, db)
	if err != nil {
		return nil, err
	}
	return &App{db: db, cfg: cfg, t: t, info: Info{
		Engine:    db.Dialect().Name(),
		Server:    db.Dialect().Server(),
		Isolation: iso,
		Procs:     cfg.Procs,
		Requests:  cfg.Requests,
		ThinkMS:   cfg.Think.Milliseconds(),
		PID:       pid,
		Initial:   InitialBalance,
		MaxName:   MaxNameLen,
	}}, nil
}

// Info returns what the page shows about the server.
func (a *App) Info() Info { return a.info }

// Handler returns the application's routes: the page at /, its JSON API
// under /api/.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	page, _ := fs.Sub(static, "static")
	mux.Handle("/", only("GET", http.FileServerFS(page)))
	mux.Handle("/api/info", only("GET", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, a.info) })))
	mux.Handle("/api/goc/{mode}", only("POST", http.HandlerFunc(a.handleGetOrCreate)))
	mux.Handle("/api/goc/rows", only("GET", http.HandlerFunc(a.handleRows)))
	mux.Handle("/api/transfer/{mode}", only("POST", http.HandlerFunc(a.handleTransfer)))
	mux.Handle("/api/transfer/state", only("GET", http.HandlerFunc(a.handleState)))
	mux.Handle("/api/reset", only("POST", http.HandlerFunc(a.handleReset)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
	})
	return secureHeaders(mux)
}

// only answers 405 with a JSON message to requests whose method is not
// method (or HEAD, for GET).
func only(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == "GET" && r.Method == "HEAD") {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, "%s %s: this endpoint takes %s", r.Method, r.URL.Path, method)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// secureHeaders forbids the page to load anything from elsewhere: what it
// needs is in the binary.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// q rewrites the ? placeholders of query for the engine ($1, $2… on
// PostgreSQL).
func (a *App) q(query string) string {
	d := a.db.Dialect()
	if d.Placeholder(1) == "?" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString(d.Placeholder(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// think waits Config.Think, or until ctx ends.
func (a *App) think(ctx context.Context) error {
	if a.cfg.Think <= 0 {
		return nil
	}
	t := time.NewTimer(a.cfg.Think)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fail answers a request whose database work failed: 503 when the client
// went away or the server is stopping, 500 otherwise, with the error's text
// (this is a demonstration on the user's own machine: the reason is worth
// more than discretion).
func (a *App) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	if r.Context().Err() != nil || errors.Is(err, context.Canceled) {
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, "%s: %v", what, err)
}

// pid is this process's id, shown with every answer.
var pid = os.Getpid()
