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
// # Generic wrappers
//
// A generic function of your own that passes its type parameter on, as
// the row type, to one of those verbs (or to another such function) is
// not reported itself; each instantiation of it is, in its package or in
// any package that imports it (the analyzer records a fact about the
// wrapper, which go vet carries across packages):
//
//	func Load[R any](ctx context.Context, db *racefree.DB) (R, error) {
//		row, _, err := racefree.GetOrCreate[R](ctx, db, "users", lookup, nil, racefree.Options{})
//		return row, err
//	}
//
//	Load[*User](ctx, db) // Load[*User]: its type parameter R is the row type of racefree.GetOrCreate: …
//
// # Limits
//
// A method of a generic type that passes the type's parameter on
// (func (r Repo[R]) Get() { racefree.GetOrCreate[R](…) }) is not
// followed: Repo[*User] is caught only when Get runs. Neither is a type
// parameter passed on inside a larger type (GetOrCreate[Row[R]] is
// checked as Row[R], whatever R is), nor a ValuesOf argument of interface
// type or a nil pointer. Whether the table has the columns the tags name
// is a run-time question (racefree's catalog answers it) that the
// analyzer does not ask.
package racefreevet
