package dialect_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/sqlitedialect"
)

// SchemeOf tells which registered dialect racefree.Open would use for a DSN.
func ExampleSchemeOf() {
	for _, dsn := range []string{
		"postgres://app@db:5432/shop",
		"app:secret@tcp(db:3306)/shop",
		"data/app.db",
	} {
		scheme, err := dialect.SchemeOf(dsn)
		fmt.Println(scheme, err)
	}
	// Output:
	// postgres <nil>
	// mysql <nil>
	// sqlite <nil>
}

// Schemes lists the DSN schemes racefree.Open can open: those of the
// dialect packages the program imports (here sqlitedialect).
func ExampleSchemes() {
	fmt.Println(dialect.Schemes())
	// Output: [file sqlite]
}

// Lookup finds the Opener of a scheme; an unknown one names the dialect
// package that is missing.
func ExampleLookup() {
	_, err := dialect.Lookup("sqlite")
	fmt.Println(err)
	_, err = dialect.Lookup("oracle")
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// true
}

// ParseIsolation reads a level as a server reports it.
func ExampleParseIsolation() {
	for _, s := range []string{"REPEATABLE-READ", "read committed", "SERIALIZABLE", "snapshot"} {
		fmt.Println(dialect.ParseIsolation(s))
	}
	// Output:
	// Repeatable Read
	// Read Committed
	// Serializable
	// Default
}

// ReadsCommitted tells whether a transaction sees every commit made before
// each of its statements. The server's default level counts where it is
// READ COMMITTED (PostgreSQL's, not MySQL's); a level nobody knows never
// does.
func ExampleReadsCommitted() {
	fmt.Println(dialect.ReadsCommitted(sql.LevelReadCommitted, true, false))
	fmt.Println(dialect.ReadsCommitted(sql.LevelRepeatableRead, true, true))
	fmt.Println(dialect.ReadsCommitted(sql.LevelDefault, true, true))
	fmt.Println(dialect.ReadsCommitted(sql.LevelDefault, true, false))
	fmt.Println(dialect.ReadsCommitted(sql.LevelDefault, false, true))
	// Output:
	// true
	// false
	// true
	// false
	// false
}

// Wrap classifies an error a classifier found, so that it matches the
// class's sentinel with errors.Is.
func ExampleWrap() {
	err := dialect.Wrap(dialect.ClassDeadlock, errors.New("deadlock found when trying to get lock"))
	fmt.Println(errors.Is(err, dialect.ErrDeadlock), dialect.ClassOf(sqlitedialect.New(), err))
	fmt.Println(dialect.Wrap(dialect.ClassDeadlock, nil))
	// Output:
	// true deadlock
	// <nil>
}

// ClassOf classifies an error with a dialect and returns only the class.
func ExampleClassOf() {
	d := sqlitedialect.New()
	fmt.Println(dialect.ClassOf(d, context.Canceled))
	fmt.Println(dialect.ClassOf(d, errors.New("syntax error")))
	// Output:
	// canceled
	// other
}

// ClassifyCommon settles the errors every engine shares, and leaves the
// rest (nil) to the engine's classifier.
func ExampleClassifyCommon() {
	fmt.Println(dialect.ClassifyCommon(context.DeadlineExceeded).Class)
	fmt.Println(dialect.ClassifyCommon(errors.New("ERROR: relation \"users\" does not exist")) == nil)
	// Output:
	// canceled
	// true
}

// The network predicates sort a failed connection attempt: unreachable
// (nothing was sent: waiting may help), misaddressed (a DSN mistake), or a
// connection that broke on the way.
func ExampleIsNetworkError() {
	fmt.Println(dialect.IsNetworkError(io.ErrUnexpectedEOF))
	fmt.Println(dialect.IsNetworkError(errors.New("duplicate key")))
	// Output:
	// true
	// false
}
