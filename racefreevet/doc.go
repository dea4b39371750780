// Package racefreevet is a static analyzer (a golang.org/x/tools
// go/analysis pass) that reports, before the program runs, a row type
// that racefree would refuse when the call runs.
//
// racefree's GetOrCreate, CreateOrGet, UpdateOrCreate, UpdateOrCreateFunc
// and GetOrCreateMany take the row type as a type parameter T any, so the
// compiler accepts any T; racefree checks it on the first call and
// returns an error matching ErrInvalidInput. T must be:
//
//   - racefree.Values or map[string]any (a type defined from them, such as
//     type Row racefree.Values, is neither; an alias is fine); or
//   - a struct, not a pointer to one (use T, not *T: racefree returns the
//     row by value), whose exported fields with a db:"column" tag name at
//     least one column, with no empty db:"" tag and no column tagged on
//     two fields. Untagged embedded structs contribute their fields;
//     untagged, db:"-" and unexported fields are skipped.
//
// racefree.ValuesOf takes any; the analyzer applies the same struct rules
// to its argument when the argument's static type says what it is (a
// struct, a pointer to one, or something that is neither), and stays
// silent for an interface or a type parameter. The messages are the
// library's own, prefixed with the call and the type:
//
//	racefree.GetOrCreate[*User]: result type *User is neither a struct with db tags nor racefree.Values: use T, not *T (User, not *User)
//	racefree.GetOrCreate[Account]: column "email" is tagged on two fields
//
// Run it alone or through go vet:
//
//	go install github.com/racefree/racefree/racefreevet/cmd/racefreevet@latest
//	racefreevet ./...
//	go vet -vettool=$(command -v racefreevet) ./...
//
// # Limits
//
// The analyzer sees each instantiation where it is written. A generic
// function of your own that passes its type parameter through
// (func Load[R any](…) { racefree.GetOrCreate[R](…) }) is not reported,
// and neither is a wrong type given to that function later
// (Load[*User](…)): the check happens at the call of racefree's verb, and
// there R is still a type parameter. The same holds for a ValuesOf
// argument of interface type. Whether the table has the columns the tags
// name is a run-time question (racefree's catalog answers it) that the
// analyzer does not ask.
package racefreevet
