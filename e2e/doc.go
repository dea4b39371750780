// Package e2e holds racefree's end-to-end tests in a real headless browser:
// it builds the racefree command, starts `racefree serve`, and drives the
// page with Chromium through chromedp (the Chrome DevTools Protocol).
//
// It is a Go module of its own so that racefree's module never depends on
// chromedp. Run it from this directory with `go test ./...`; it needs
// Chromium (RACEFREE_CHROMIUM names the binary, else chromium is looked up
// on PATH) and, for the PostgreSQL and MariaDB runs, the servers at
// RACEFREE_POSTGRES_DSN and RACEFREE_MYSQL_DSN (the project machines'
// addresses by default). Without them those runs skip, except under
// CI=true, where they fail.
package e2e
