// Package rows calls racefree's verbs with every kind of row type: those
// racefree reads (no diagnostic) and those it refuses at run time (a
// diagnostic naming the rule).
package rows

import (
	"context"

	"github.com/racefree/racefree"
)

var (
	ctx  = context.Background()
	opts racefree.Options
)

type User struct {
	ID    int64  `db:"id"`
	Email string `db:"email,omitempty"`
	Note  string // no tag: skipped
	Skip  string `db:"-"`
	plain string `db:"plain"` // unexported: skipped
}

type Base struct {
	ID int64 `db:"id"`
}

type base struct {
	Org int64 `db:"org"`
}

type (
	WithBase struct {
		Base
		Name string `db:"name"`
	}
	// The embedded struct's columns are enough.
	OnlyBase struct{ Base }
	// An unexported embedded struct is walked too.
	UnexportedBase struct{ base }
	// A tagged embedded struct is one column.
	TaggedEmbed struct {
		Base `db:"base"`
	}
	// A generic struct, instantiated.
	Pair[K any] struct {
		Key K `db:"k"`
	}
	UserAlias   = User            // an alias is its type
	ValuesAlias = racefree.Values // and so is an alias of Values
	UserPtr     = *User           // a pointer under an alias is still a pointer
	RowMap      racefree.Values   // a defined type is not racefree.Values
	AnyMap      map[string]any    // nor one defined as map[string]any
	// No db tag at all.
	NoTags struct{ ID int64 }
	// Tagged but unexported.
	Hidden struct {
		id int64 `db:"id"`
	}
	// Every tagged field skipped.
	Dashed struct {
		ID int64 `db:"-"`
	}
	// An embedded pointer is not walked.
	PtrBase  struct{ *Base }
	EmptyTag struct {
		Name string `db:""`
	}
	EmptyOpt struct {
		Name string `db:",omitempty"`
	}
	Twice struct {
		A, B string `db:"email"`
	}
	TwiceEmbed struct {
		Base
		Other int64 `db:"id"`
	}
	HiddenBase struct{ hiddenBase }
	hiddenBase struct {
		secret string `db:"secret"`
	}
)

func Good() {
	racefree.GetOrCreate[racefree.Values](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[map[string]any](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[map[string]interface{}](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[ValuesAlias](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[User](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[UserAlias](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[struct {
		ID int64 `db:"id"`
	}](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[WithBase](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[OnlyBase](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[UnexportedBase](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[TaggedEmbed](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreate[Pair[string]](ctx, nil, "t", nil, nil, opts)
	racefree.CreateOrGet[User](ctx, nil, "t", nil, nil, opts)
	racefree.UpdateOrCreate[User](ctx, nil, "t", nil, nil, opts)
	racefree.GetOrCreateMany[User](ctx, nil, "t", nil, opts)
	// T inferred from the update function.
	racefree.UpdateOrCreateFunc(ctx, nil, "t", nil, func(cur *User) (racefree.Values, error) { return nil, nil }, opts)
	// A function value is an instantiation too.
	get := racefree.GetOrCreate[User]
	_ = get
	// Not a row type.
	racefree.LockRows[int64](ctx, nil, "t", "id", nil, racefree.RowLockOptions{})
}

func Pointers() {
	racefree.GetOrCreate[*User](ctx, nil, "t", nil, nil, opts)            // want `racefree.GetOrCreate\[\*User\]: result type \*User is neither a struct with db tags nor racefree.Values: use T, not \*T \(User, not \*User\)`
	racefree.GetOrCreate[UserPtr](ctx, nil, "t", nil, nil, opts)          // want `racefree.GetOrCreate\[UserPtr\]: result type \*User is neither .*: use T, not \*T`
	racefree.GetOrCreate[*racefree.Values](ctx, nil, "t", nil, nil, opts) // want `result type \*racefree.Values is neither a struct with db tags nor racefree.Values: use T, not \*T \(racefree.Values, not \*racefree.Values\)`
	racefree.CreateOrGet[*User](ctx, nil, "t", nil, nil, opts)            // want `racefree.CreateOrGet\[\*User\]: .*use T, not \*T`
	racefree.UpdateOrCreate[*User](ctx, nil, "t", nil, nil, opts)         // want `racefree.UpdateOrCreate\[\*User\]: .*use T, not \*T`
	racefree.GetOrCreateMany[*User](ctx, nil, "t", nil, opts)             // want `racefree.GetOrCreateMany\[\*User\]: .*use T, not \*T`

	// T inferred as *User from the update function.
	racefree.UpdateOrCreateFunc(ctx, nil, "t", nil, func(cur **User) (racefree.Values, error) { return nil, nil }, opts) // want `racefree.UpdateOrCreateFunc\[\*User\]: .*use T, not \*T`

	get := racefree.GetOrCreate[*User] // want `racefree.GetOrCreate\[\*User\]: .*use T, not \*T`
	_ = get
	racefree.GetOrCreate[**User](ctx, nil, "t", nil, nil, opts) // want `result type \*\*User is neither a struct with db tags nor racefree.Values$`
}

func NotStructs() {
	racefree.GetOrCreate[int](ctx, nil, "t", nil, nil, opts)               // want `racefree.GetOrCreate\[int\]: result type int is neither a struct with db tags nor racefree.Values$`
	racefree.GetOrCreate[[]User](ctx, nil, "t", nil, nil, opts)            // want `result type \[\]User is neither`
	racefree.GetOrCreate[any](ctx, nil, "t", nil, nil, opts)               // want `result type any is neither`
	racefree.GetOrCreate[map[string]string](ctx, nil, "t", nil, nil, opts) // want `result type map\[string\]string is neither`
	racefree.GetOrCreate[RowMap](ctx, nil, "t", nil, nil, opts)            // want `result type RowMap is neither a struct with db tags nor racefree.Values$`
	racefree.GetOrCreate[AnyMap](ctx, nil, "t", nil, nil, opts)            // want `result type AnyMap is neither`
}

func Structs() {
	racefree.GetOrCreate[NoTags](ctx, nil, "t", nil, nil, opts)     // want `racefree.GetOrCreate\[NoTags\]: struct NoTags has no field with a db:"column" tag`
	racefree.GetOrCreate[struct{}](ctx, nil, "t", nil, nil, opts)   // want `struct struct\{\} has no field with a db:"column" tag`
	racefree.GetOrCreate[Hidden](ctx, nil, "t", nil, nil, opts)     // want `struct Hidden has no field`
	racefree.GetOrCreate[Dashed](ctx, nil, "t", nil, nil, opts)     // want `struct Dashed has no field`
	racefree.GetOrCreate[PtrBase](ctx, nil, "t", nil, nil, opts)    // want `struct PtrBase has no field`
	racefree.GetOrCreate[HiddenBase](ctx, nil, "t", nil, nil, opts) // want `struct HiddenBase has no field`
	racefree.GetOrCreate[EmptyTag](ctx, nil, "t", nil, nil, opts)   // want `racefree.GetOrCreate\[EmptyTag\]: field Name has an empty db tag`
	racefree.GetOrCreate[EmptyOpt](ctx, nil, "t", nil, nil, opts)   // want `field Name has an empty db tag`
	racefree.GetOrCreate[Twice](ctx, nil, "t", nil, nil, opts)      // want `racefree.GetOrCreate\[Twice\]: column "email" is tagged on two fields`
	racefree.GetOrCreate[TwiceEmbed](ctx, nil, "t", nil, nil, opts) // want `column "id" is tagged on two fields`
}
