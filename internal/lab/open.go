package lab

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/mysqldialect"
	"github.com/racefree/racefree/dialect/pgdialect"
)

// ConnOptions say how a worker process connects.
type ConnOptions struct {
	// Via is a host:port to connect to instead of the server's: the cut
	// proxy.
	Via string
	// Tag names the run's sessions on the server: PostgreSQL's
	// application_name, so that the lab can find sessions and advisory
	// locks left behind.
	Tag string
	// Tally records the local port of every connection made, so that the
	// lab can find a dead process's sessions on MySQL/MariaDB, where
	// sessions carry no name.
	Tally *Tally
}

// EngineOf names the engine a DSN is for, as the racefree command detects
// it: "postgres", "mysql" or "sqlite", or "" for a scheme the lab does not
// know.
func EngineOf(dsn string) string {
	lower := strings.ToLower(dsn)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return "postgres"
	case strings.HasPrefix(lower, "mysql://"), strings.HasPrefix(lower, "mariadb://"),
		strings.Contains(dsn, "@tcp("), strings.Contains(dsn, "@unix("):
		return "mysql"
	case strings.Contains(dsn, "://"):
		return ""
	}
	return "sqlite"
}

// OpenWorker opens dsn as racefree.Open would, with the lab's hooks: the
// connection goes to o.Via instead of the server, is named o.Tag, and its
// local port is recorded in o.Tally. A SQLite DSN (no network) is opened
// as is; o.Via is refused for it.
func OpenWorker(ctx context.Context, dsn string, o ConnOptions) (*Worker, error) {
	switch EngineOf(dsn) {
	case "postgres":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse DSN: %w", err)
		}
		if o.Via != "" {
			host, port, err := splitHostPort(o.Via)
			if err != nil {
				return nil, err
			}
			cfg.Host, cfg.Port, cfg.Fallbacks = host, port, nil
		}
		if o.Tag != "" {
			cfg.RuntimeParams["application_name"] = o.Tag
		}
		dial := cfg.DialFunc
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			recordPort(o.Tally, c)
			return c, err
		}
		return wrap(ctx, stdlib.OpenDB(*cfg), pgdialect.New())
	case "mysql":
		cfg, err := mysqldialect.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		if o.Via != "" {
			cfg.Net, cfg.Addr = "tcp", o.Via
		}
		var d net.Dialer
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			recordPort(o.Tally, c)
			return c, err
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("open: %w", err)
		}
		return wrap(ctx, sql.OpenDB(conn), mysqldialect.New())
	case "sqlite":
		if o.Via != "" {
			return nil, fmt.Errorf("SQLite has no network connection to cut")
		}
	}
	db, err := racefree.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &Worker{DB: db}, nil
}

// Worker is a worker process's database: Close closes the pool too.
type Worker struct {
	*racefree.DB
	pool *sql.DB // nil when racefree.Open made it (Close closes it then)
}

// Close closes the database and its pool.
func (w *Worker) Close() error {
	err := w.DB.Close()
	if w.pool != nil {
		if cerr := w.pool.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func wrap(ctx context.Context, pool *sql.DB, d dialect.Dialect) (*Worker, error) {
	db, err := racefree.New(ctx, pool, d)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Worker{DB: db, pool: pool}, nil
}

func recordPort(t *Tally, c net.Conn) {
	if c == nil {
		return
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		t.Port(a.Port)
	}
}

func splitHostPort(hp string) (string, uint16, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("proxy address %q: %w", hp, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("proxy address %q: bad port", hp)
	}
	return host, uint16(port), nil
}

// ServerAddr returns the host:port of the server a PostgreSQL or MySQL
// DSN names, for the cut proxy to forward to.
func ServerAddr(dsn string) (string, error) {
	switch EngineOf(dsn) {
	case "postgres":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		if strings.HasPrefix(cfg.Host, "/") {
			return "", fmt.Errorf("the DSN names a unix socket (%s); the proxy needs a TCP address", cfg.Host)
		}
		return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), nil
	case "mysql":
		cfg, err := mysqldialect.ParseDSN(dsn)
		if err != nil {
			return "", err
		}
		if cfg.Net != "tcp" {
			return "", fmt.Errorf("the DSN names a %s connection; the proxy needs a TCP address", cfg.Net)
		}
		return cfg.Addr, nil
	case "sqlite":
		return "", fmt.Errorf("SQLite has no network connection to cut")
	}
	return "", fmt.Errorf("unknown DSN scheme")
}
