// Package generic wraps racefree's verbs in generic functions of its own.
// A wrapper passing its type parameter through is not reported itself;
// each instantiation of it is, here and in the packages that import it
// (package wrapped). A wrapper whose own use of its type parameter can
// never work is reported where it is written.
package generic

import (
	"context"

	"github.com/racefree/racefree"
)

var (
	ctx  = context.Background()
	opts racefree.Options
)

type User struct {
	ID int64 `db:"id"`
}

// Load passes its R through: fine for any R racefree accepts.
func Load[R any](table string) (R, error) { // want Load:`rowParams\(0:racefree.GetOrCreate\)`
	row, _, err := racefree.GetOrCreate[R](ctx, nil, table, nil, nil, opts)
	return row, err
}

// Update passes R through by inference.
func Update[R any](update func(*R) (racefree.Values, error)) (R, error) { // want Update:`rowParams\(0:racefree.UpdateOrCreateFunc\)`
	row, _, err := racefree.UpdateOrCreateFunc(ctx, nil, "t", nil, update, opts)
	return row, err
}

// Pick's second type parameter is the row type, through a wrapper
// declared after it.
func Pick[K comparable, R any](key K) (R, error) { // want Pick:`rowParams\(1:racefree.GetOrCreate\)`
	return loadLater[R]()
}

func loadLater[R any]() (R, error) { return Load[R]("t") }

// Many instantiates the wrapper with a type built from its own
// parameter: checked as it is, not passed on.
func Many[R any]() {
	Load[[]R]("t") // want `Load\[\[\]R\]: its type parameter R is the row type of racefree.GetOrCreate: result type \[\]R is neither`
}

type Repo[R any] struct{ Table string }

func (r Repo[R]) Get() (R, error) {
	row, _, err := racefree.CreateOrGet[R](ctx, nil, r.Table, nil, nil, opts)
	return row, err
}

// Row wraps R in a struct that carries a tag, whatever R is.
type Row[R any] struct {
	V R `db:"v"`
}

// Box wraps R in a struct with no tag, whatever R is.
type Box[R any] struct{ V R }

func Wrapped[R any]() {
	racefree.GetOrCreate[Row[R]](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[Box[R]](ctx, nil, "t", nil, nil, opts) // want `racefree.GetOrCreate\[Box\[R\]\]: struct Box\[R\] has no field with a db:"column" tag`
	racefree.GetOrCreate[*R](ctx, nil, "t", nil, nil, opts)     // want `racefree.GetOrCreate\[\*R\]: result type \*R is neither a struct with db tags nor racefree.Values`
	racefree.GetOrCreate[[]R](ctx, nil, "t", nil, nil, opts)    // want `result type \[\]R is neither`
}

func Callers() {
	Load[User]("t")
	Update(func(u *User) (racefree.Values, error) { return nil, nil })
	Pick[string, User]("k")
	Repo[User]{Table: "t"}.Get()
	Wrapped[User]()

	Load[*User]("t")                                                    // want `Load\[\*User\]: its type parameter R is the row type of racefree.GetOrCreate: result type \*User is neither .*: use T, not \*T \(User, not \*User\)`
	Update(func(u **User) (racefree.Values, error) { return nil, nil }) // want `Update\[\*User\]: its type parameter R is the row type of racefree.UpdateOrCreateFunc: .*use T, not \*T`
	Pick[string, int]("k")                                              // want `Pick\[string, int\]: its type parameter R is the row type of racefree.GetOrCreate: result type int is neither`
	loadLater[struct{}]()                                               // want `loadLater\[struct\{\}\]: its type parameter R is the row type of racefree.GetOrCreate: struct struct\{\} has no field`

	// Wrong, and not seen: R comes from the receiver's type, and the
	// analyzer follows generic functions only, not methods of generic
	// types. racefree reports it at run time.
	Repo[int]{Table: "t"}.Get()
}
