// Package valuesof calls racefree.ValuesOf with arguments whose static
// type tells whether the library can read them.
package valuesof

import "github.com/racefree/racefree"

type Key struct {
	Email string `db:"email"`
}

type (
	NoTags   struct{ Email string }
	EmptyTag struct {
		Email string `db:""`
	}
	Twice struct {
		A string `db:"email"`
		B string `db:"email"`
	}
	WithKey struct {
		Key
		Name string `db:"name,omitempty"`
	}
	KeyAlias = Key
)

func Good(k Key, p *Key, pp **Key, v any, w WithKey) {
	racefree.ValuesOf(k)
	racefree.ValuesOf(Key{Email: "a@x"})
	racefree.ValuesOf(&Key{Email: "a@x"}) // ValuesOf follows a pointer
	racefree.ValuesOf(p)
	racefree.ValuesOf(pp) // and a pointer to one
	racefree.ValuesOf(w)
	racefree.ValuesOf(KeyAlias{})
	racefree.ValuesOf(struct {
		Name string `db:"name"`
	}{Name: "n"})
	racefree.ValuesOf(v) // an interface: the dynamic type decides
	f := racefree.ValuesOf
	f(42) // not a call of racefree.ValuesOf the analyzer can see
}

func Generic[R any, P *R](r R, p P) {
	racefree.ValuesOf(r) // a type parameter: the instantiation decides
	racefree.ValuesOf(&r)
	racefree.ValuesOf(p)
}

func Bad(m racefree.Values, n int, np *int) {
	racefree.ValuesOf(NoTags{})         // want `racefree.ValuesOf argument of type NoTags: struct NoTags has no field with a db:"column" tag`
	racefree.ValuesOf(&NoTags{})        // want `racefree.ValuesOf argument of type \*NoTags: struct NoTags has no field with a db:"column" tag`
	racefree.ValuesOf(EmptyTag{})       // want `argument of type EmptyTag: field Email has an empty db tag`
	racefree.ValuesOf(Twice{})          // want `argument of type Twice: column "email" is tagged on two fields`
	racefree.ValuesOf(m)                // want `racefree.ValuesOf argument of type racefree.Values: racefree.Values is not a struct \(or a pointer to one\) with db tags`
	racefree.ValuesOf(map[string]any{}) // want `map\[string\]any is not a struct`
	racefree.ValuesOf(n)                // want `int is not a struct \(or a pointer to one\) with db tags`
	racefree.ValuesOf(np)               // want `\*int is not a struct`
	racefree.ValuesOf("email")          // want `argument of type string: string is not a struct`
	racefree.ValuesOf(nil)              // want `racefree.ValuesOf argument of type untyped nil: <nil> is not a struct \(or a pointer to one\) with db tags`
}
