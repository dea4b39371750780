// Package dialect defines what racefree needs to know about a database engine:
// how to quote identifiers and write placeholders, which features the server
// has (read from its version), and how to classify the errors its driver
// returns.
//
// Each engine lives in its own leaf package (pgdialect, mysqldialect,
// sqlitedialect); those are the only packages that import a driver. This
// package imports none, and it does not import the root racefree package, so
// the root can depend on it without cycles.
//
// # Error classes
//
// Every driver error that racefree sees is classified into one [Class] by the
// engine's [Dialect.Classify]. The result is an [*Error] that wraps the driver's
// error unchanged (its message is the driver's message) and matches the class
// sentinels with errors.Is:
//
//	if errors.Is(err, dialect.ErrUniqueViolation) { … }
//
// The root package re-exports the sentinels, so callers rarely import this
// package directly.
package dialect
