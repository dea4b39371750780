// Package serve is the web application behind `racefree serve`: the classic
// get-or-create experiment — a page whose button fires ten requests for the
// same name at once — and the bank-transfer race, each answered side by side
// by the code people usually write and by racefree.
//
// The application is an [http.Handler] over one [racefree.DB] ([App]). The
// command runs it in several OS processes that accept connections on one
// shared listening socket ([Prefork]), as a prefork web server does, so that
// the races it shows are races between processes, which no mutex inside one
// of them could prevent.
//
// The naive handlers are wrong on purpose: they are the code the page exists
// to show failing. Each table the page uses has a twin: the naive one has no
// unique constraint, as the naive code's table usually has none; racefree's
// has the unique index GetOrCreate relies on.
//
// The page is three small files embedded in the binary: no build step, no
// script or style from a CDN, so it works offline.
package serve
