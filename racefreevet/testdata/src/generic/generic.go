// Package generic wraps racefree's verbs in generic functions of its own.
// A wrapper passing its type parameter through is not reported: the
// instantiation of the wrapper decides, and the analyzer does not follow
// it (the limit the package doc states). A wrapper whose own use of its
// type parameter can never work is reported.
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
func Load[R any](table string) (R, error) {
	row, _, err := racefree.GetOrCreate[R](ctx, nil, table, nil, nil, opts)
	return row, err
}

// Update passes R through by inference.
func Update[R any](update func(*R) (racefree.Values, error)) (R, error) {
	row, _, err := racefree.UpdateOrCreateFunc(ctx, nil, "t", nil, update, opts)
	return row, err
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
	Repo[User]{Table: "t"}.Get()
	Wrapped[User]()
	// Wrong, and not seen: the check happens at racefree.GetOrCreate[R],
	// where R is still a type parameter. racefree reports it at run time.
	Load[*User]("t")
	Repo[int]{Table: "t"}.Get()
}
