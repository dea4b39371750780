package racefreevet

import (
	"fmt"
	"go/types"
	"reflect"
	"strings"
)

// The rules below are those of racefree's values.go (newCodec, fieldsOf,
// ValuesOf), applied to go/types types instead of reflect types, and its
// error messages word for word, so that the analyzer's verdict and the
// library's never differ. agree_test.go checks that against the library
// itself whenever this module sits in a racefree checkout.

// rowTypeProblem says why T cannot be the row type of a racefree verb, or
// "" when it can. q prints types as the diagnostic should show them.
func rowTypeProblem(t types.Type, q types.Qualifier) string {
	t = types.Unalias(t) // name the type itself, as racefree's errors do
	if _, ok := t.(*types.TypeParam); ok {
		// A generic wrapper passing its own T through: the instantiation
		// of the wrapper decides, and the analyzer does not follow it.
		return ""
	}
	if isValuesType(t) {
		return ""
	}
	st, ok := t.Underlying().(*types.Struct)
	if !ok {
		msg := fmt.Sprintf("result type %s is neither a struct with db tags nor racefree.Values", types.TypeString(t, q))
		if ptr, ok := t.Underlying().(*types.Pointer); ok {
			if _, isStruct := ptr.Elem().Underlying().(*types.Struct); isStruct || isValuesType(ptr.Elem()) {
				elem := types.TypeString(ptr.Elem(), q)
				msg += fmt.Sprintf(": use T, not *T (%s, not *%s)", elem, elem)
			}
		}
		return msg
	}
	return structProblem(t, st, q)
}

// valuesOfProblem says why racefree.ValuesOf cannot read an argument of
// static type t, or "" when it can or when t does not tell (an interface,
// a type parameter: the dynamic type decides).
func valuesOfProblem(t types.Type, q types.Qualifier) string {
	t = types.Unalias(t)
	if b, ok := t.(*types.Basic); ok && b.Kind() == types.UntypedNil {
		return "<nil> is not a struct (or a pointer to one) with db tags"
	}
	if _, ok := t.(*types.TypeParam); ok {
		return ""
	}
	if types.IsInterface(t) {
		return ""
	}
	// ValuesOf follows pointers while they are not nil; a nil pointer is a
	// run-time matter the analyzer cannot see.
	elem := t
	for {
		ptr, ok := elem.Underlying().(*types.Pointer)
		if !ok {
			break
		}
		elem = ptr.Elem()
		if _, ok := elem.(*types.TypeParam); ok {
			return ""
		}
	}
	st, ok := elem.Underlying().(*types.Struct)
	if !ok {
		return fmt.Sprintf("%s is not a struct (or a pointer to one) with db tags", types.TypeString(t, q))
	}
	return structProblem(elem, st, q)
}

// isValuesType reports whether t is racefree.Values (or an alias of it) or
// map[string]any: the two map types newCodec reads whole rows into. A
// type defined as either (type M racefree.Values) is neither.
func isValuesType(t types.Type) bool {
	t = types.Unalias(t)
	if named, ok := t.(*types.Named); ok {
		obj := named.Obj()
		return obj.Pkg() != nil && obj.Pkg().Path() == racefreePath && obj.Name() == "Values" && named.TypeArgs() == nil
	}
	m, ok := t.(*types.Map)
	if !ok {
		return false
	}
	key, ok := m.Key().(*types.Basic)
	if !ok || key.Kind() != types.String {
		return false
	}
	elem, ok := types.Unalias(m.Elem()).(*types.Interface)
	return ok && elem.Empty()
}

// structProblem is fieldsOf: the db-tagged exported fields of the struct
// t (underlying st), untagged embedded structs walked, must name at
// least one column, none empty and none twice. Its control flow is
// fieldsOf's, so that when a struct has several problems the one named is
// the one the library names.
func structProblem(t types.Type, st *types.Struct, q types.Qualifier) string {
	var problem string
	ncols := 0
	seen := map[string]bool{}
	var walk func(st *types.Struct)
	walk = func(st *types.Struct) {
		for i := range st.NumFields() {
			f := st.Field(i)
			tag, hasTag := reflect.StructTag(st.Tag(i)).Lookup("db")
			tag, _, _ = strings.Cut(tag, ",")
			if inner, ok := f.Type().Underlying().(*types.Struct); ok && f.Embedded() && !hasTag {
				walk(inner)
				continue
			}
			if !hasTag || tag == "-" || !f.Exported() {
				continue
			}
			if tag == "" {
				problem = fmt.Sprintf("field %s has an empty db tag", f.Name())
				return
			}
			if seen[tag] {
				problem = fmt.Sprintf("column %q is tagged on two fields", tag)
				return
			}
			seen[tag] = true
			ncols++
		}
	}
	walk(st)
	if problem == "" && ncols == 0 {
		problem = fmt.Sprintf("struct %s has no field with a db:\"column\" tag", types.TypeString(t, q))
	}
	return problem
}
