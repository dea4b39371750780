// Package wrapped instantiates package generic's wrappers: the facts
// about them cross the package boundary.
package wrapped

import "generic"

type Account struct {
	Email string `db:"email"`
	Login string `db:"email"`
}

func Use() {
	generic.Load[generic.User]("t")
	generic.Load[Account]("t")              // want `generic.Load\[Account\]: its type parameter R is the row type of racefree.GetOrCreate: column "email" is tagged on two fields`
	generic.Pick[int, *generic.User](1)     // want `generic.Pick\[int, \*generic.User\]: its type parameter R is the row type of racefree.GetOrCreate: .*use T, not \*T`
	load := generic.Load[map[string]string] // want `generic.Load\[map\[string\]string\]: .*result type map\[string\]string is neither`
	_ = load
}
