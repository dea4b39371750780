// Package bench measures what racefree's operations cost against the raw
// statements a careful programmer would write instead, on the user's own
// database. It is the engine behind `racefree bench`.
//
// # Cases
//
// A [Case] pairs one racefree operation with its raw counterpart: a
// get-or-create hit with a primary-key SELECT, a transfer through RunInTx
// and LockRows with the hand-written conditional-UPDATE transfer, and so
// on. Cases register themselves with [Register] from an init function in a
// file of their own (cases_*.go), so a new operation is measured by adding
// one file: a Setup that creates the case's table and an Ops that returns
// the two sides as closures.
//
// # Ratios
//
// [Measure] runs a case's two sides in strictly alternating segments of
// equal length — raw, racefree, raw, racefree, …, raw — and takes one ratio
// per racefree segment: its throughput over the mean of the raw segments on
// either side. A slow drift of the machine's speed cancels out of each
// ratio, and noise that hits one segment shows as a wider interval rather
// than as a false result. [RatioInterval] turns the per-round ratios into a
// geometric mean with a Student t confidence interval on their logarithms.
//
// # Scaling
//
// [Scale] runs a case at growing concurrency — more OS processes, or more
// goroutines in one process — through a [Launcher] that the command
// provides (it re-executes the racefree binary as worker processes, as the
// lab does), and says whether the throughput curve collapses.
//
// # Reports
//
// A [Report] holds everything one run measured; it is printed as an
// aligned table ([WriteTable]), as JSON with stable field names (the
// struct tags, documented in docs/bench.md), or as a self-contained HTML
// page whose charts gonum/plot renders as inline SVG ([WriteHTML]).
// [Validate] checks that every figure is present and finite.
package bench
