package mysqldialect

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/racefree/racefree/dialect"
)

func init() {
	dialect.Register("mysql", openDialect)
	dialect.Register("mariadb", openDialect)
}

// Open opens a MySQL or MariaDB database. dsn is either a URL
// (mysql://user:pass@host:3306/db?param=value) or the driver's own form
// (user:pass@tcp(host:3306)/db?param=value). Unless the DSN says otherwise,
// parseTime is on (DATETIME scans into time.Time) and interpolateParams is
// on: the driver binds values itself with the connection's character set,
// which saves the prepare round trip each statement would otherwise cost.
// It does not connect; the first use does.
func Open(dsn string) (*sql.DB, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysqldialect: open: %w", err)
	}
	return sql.OpenDB(conn), nil
}

// ParseDSN parses either DSN form into the driver's Config, with racefree's
// defaults applied.
func ParseDSN(dsn string) (*mysql.Config, error) {
	native := dsn
	if strings.HasPrefix(dsn, "mysql://") || strings.HasPrefix(dsn, "mariadb://") {
		var err error
		native, err = urlToNative(dsn)
		if err != nil {
			return nil, err
		}
	}
	cfg, err := mysql.ParseDSN(native)
	if err != nil {
		return nil, fmt.Errorf("mysqldialect: parse DSN: %w", err)
	}
	if !strings.Contains(native, "parseTime=") {
		cfg.ParseTime = true
	}
	if !strings.Contains(native, "interpolateParams=") {
		cfg.InterpolateParams = true
	}
	return cfg, nil
}

// urlToNative turns mysql://user:pass@host:port/db?x=y into
// user:pass@tcp(host:port)/db?x=y.
func urlToNative(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("mysqldialect: parse DSN: %w", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("mysqldialect: parse DSN: no host in %q", u.Redacted())
	}
	host := u.Host
	if u.Port() == "" {
		host += ":3306"
	}
	var b strings.Builder
	if u.User != nil {
		b.WriteString(u.User.Username())
		if p, ok := u.User.Password(); ok {
			b.WriteString(":" + p)
		}
		b.WriteString("@")
	}
	b.WriteString("tcp(" + host + ")/" + strings.TrimPrefix(u.Path, "/"))
	if u.RawQuery != "" {
		b.WriteString("?" + u.RawQuery)
	}
	return b.String(), nil
}

func openDialect(dsn string) (*sql.DB, dialect.Dialect, error) {
	db, err := Open(dsn)
	if err != nil {
		return nil, nil, err
	}
	return db, New(), nil
}
