package racefreevet

import (
	"go/ast"
	"go/types"

	"golang.org/x/tools/go/analysis"
)

// racefreePath is the import path of the package whose calls are checked.
const racefreePath = "github.com/racefree/racefree"

// rowVerbs are racefree's generic functions whose type parameter T is the
// row type read back (newCodec decides at run time whether it works), with
// the index of that type parameter. A generic function of racefree whose
// type parameter is not a row type (LockRows' key type K) is not listed.
var rowVerbs = map[string]int{
	"GetOrCreate":        0,
	"CreateOrGet":        0,
	"UpdateOrCreate":     0,
	"UpdateOrCreateFunc": 0,
	"GetOrCreateMany":    0,
}

// Analyzer reports a row type that racefree would refuse at run time: the
// type argument T of GetOrCreate, CreateOrGet, UpdateOrCreate,
// UpdateOrCreateFunc and GetOrCreateMany, and the argument of ValuesOf
// when its static type says what it is.
var Analyzer = &analysis.Analyzer{
	Name: "racefreevet",
	Doc: `report racefree row types that fail at run time

racefree's GetOrCreate, CreateOrGet, UpdateOrCreate, UpdateOrCreateFunc and
GetOrCreateMany read the row into their type argument T, which must be
racefree.Values, map[string]any, or a struct (not a pointer to one) whose
exported fields carry db:"column" tags: at least one, none empty, no column
on two fields. racefree checks that when the call runs; this analyzer
checks it when the program is built. It also checks the argument of
racefree.ValuesOf (a struct or a pointer to one, with the same rules)
when its static type is not an interface.`,
	URL: "https://pkg.go.dev/github.com/racefree/racefree/racefreevet",
	Run: run,
}

func run(pass *analysis.Pass) (any, error) {
	// Types are printed as the reader wrote them: unqualified in their own
	// package, by package name elsewhere (as racefree's run-time errors
	// print them).
	q := func(p *types.Package) string {
		if p == pass.Pkg {
			return ""
		}
		return p.Name()
	}
	for id, inst := range pass.TypesInfo.Instances {
		fn, ok := pass.TypesInfo.Uses[id].(*types.Func)
		if !ok || !isRacefree(fn) {
			continue
		}
		i, ok := rowVerbs[fn.Name()]
		if !ok || i >= inst.TypeArgs.Len() {
			continue
		}
		t := inst.TypeArgs.At(i)
		if problem := rowTypeProblem(t, q); problem != "" {
			pass.Reportf(id.Pos(), "racefree.%s[%s]: %s", fn.Name(), types.TypeString(t, q), problem)
		}
	}
	for _, f := range pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 || call.Ellipsis.IsValid() {
				return true
			}
			fn, ok := calledFunc(pass.TypesInfo, call.Fun).(*types.Func)
			if !ok || !isRacefree(fn) || fn.Name() != "ValuesOf" {
				return true
			}
			t := pass.TypesInfo.TypeOf(call.Args[0])
			if t == nil {
				return true
			}
			if problem := valuesOfProblem(t, q); problem != "" {
				pass.Reportf(call.Args[0].Pos(), "racefree.ValuesOf argument of type %s: %s", types.TypeString(t, q), problem)
			}
			return true
		})
	}
	return nil, nil
}

// calledFunc returns the object a call's function expression names
// (racefree.ValuesOf, or ValuesOf inside package racefree), or nil.
func calledFunc(info *types.Info, fun ast.Expr) types.Object {
	switch fun := ast.Unparen(fun).(type) {
	case *ast.Ident:
		return info.Uses[fun]
	case *ast.SelectorExpr:
		return info.Uses[fun.Sel]
	}
	return nil
}

// isRacefree reports whether fn is a package-level function of package
// racefree.
func isRacefree(fn *types.Func) bool {
	return fn.Pkg() != nil && fn.Pkg().Path() == racefreePath && fn.Signature().Recv() == nil
}
