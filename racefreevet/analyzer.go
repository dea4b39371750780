package racefreevet

import (
	"fmt"
	"go/ast"
	"go/types"
	"slices"
	"strings"

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
// UpdateOrCreateFunc and GetOrCreateMany, the type argument of a generic
// function of the program's own that passes it on to one of them, and the
// argument of ValuesOf when its static type says what it is.
var Analyzer = &analysis.Analyzer{
	Name: "racefreevet",
	Doc: `report racefree row types that fail at run time

racefree's GetOrCreate, CreateOrGet, UpdateOrCreate, UpdateOrCreateFunc and
GetOrCreateMany read the row into their type argument T, which must be
racefree.Values, map[string]any, or a struct (not a pointer to one) whose
exported fields carry db:"column" tags: at least one, none empty, no column
on two fields. racefree checks that when the call runs; this analyzer
checks it when the program is built, also through generic functions that
pass their type parameter on to those verbs. It also checks the argument
of racefree.ValuesOf (a struct or a pointer to one, with the same rules)
when its static type is not an interface.`,
	URL:       "https://pkg.go.dev/github.com/racefree/racefree/racefreevet",
	Run:       run,
	FactTypes: []analysis.Fact{new(rowParams)},
}

// rowParams is the fact of a generic function that passes some of its
// type parameters on to a racefree verb as its row type, so that each
// instantiation of the function is checked where it is written, in its
// own package or another.
type rowParams struct {
	Params []rowParam
}

type rowParam struct {
	Index int    // of the function's type parameter
	Verb  string // the racefree verb it reaches, "racefree.GetOrCreate"
}

func (*rowParams) AFact() {}

func (f *rowParams) String() string {
	var parts []string
	for _, p := range f.Params {
		parts = append(parts, fmt.Sprintf("%d:%s", p.Index, p.Verb))
	}
	return "rowParams(" + strings.Join(parts, ", ") + ")"
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
	local := localRowParams(pass)
	for id, inst := range pass.TypesInfo.Instances {
		fn, ok := pass.TypesInfo.Uses[id].(*types.Func)
		if !ok {
			continue
		}
		fn = fn.Origin()
		for _, p := range rowParamsOf(pass, local, fn) {
			if p.Index >= inst.TypeArgs.Len() {
				continue
			}
			t := inst.TypeArgs.At(p.Index)
			problem := rowTypeProblem(t, q)
			if problem == "" {
				continue
			}
			if isRacefree(fn) {
				pass.Reportf(id.Pos(), "racefree.%s[%s]: %s", fn.Name(), types.TypeString(t, q), problem)
			} else {
				pass.Reportf(id.Pos(), "%s[%s]: its type parameter %s is the row type of %s: %s",
					funcName(fn, q), typeArgs(inst.TypeArgs, q), fn.Signature().TypeParams().At(p.Index).Obj().Name(), p.Verb, problem)
			}
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

// rowParamsOf returns which type parameters of the generic function fn
// are row types: racefree's verbs by name, this package's functions from
// local, other packages' from their facts.
func rowParamsOf(pass *analysis.Pass, local map[*types.Func][]rowParam, fn *types.Func) []rowParam {
	if isRacefree(fn) {
		if i, ok := rowVerbs[fn.Name()]; ok {
			return []rowParam{{Index: i, Verb: "racefree." + fn.Name()}}
		}
		return nil
	}
	if fn.Pkg() == pass.Pkg {
		return local[fn]
	}
	var fact rowParams
	if pass.ImportObjectFact(fn, &fact) {
		return fact.Params
	}
	return nil
}

// localRowParams finds this package's generic functions that pass a type
// parameter of theirs, unchanged, as the row type of a racefree verb or
// of another such function, and exports the fact for each. Functions
// may call each other in any order, so it repeats until nothing changes.
func localRowParams(pass *analysis.Pass) map[*types.Func][]rowParam {
	type generic struct {
		fn   *types.Func
		body *ast.BlockStmt
	}
	var funcs []generic
	for _, f := range pass.Files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Type.TypeParams == nil || fd.Body == nil {
				continue
			}
			if fn, ok := pass.TypesInfo.Defs[fd.Name].(*types.Func); ok {
				funcs = append(funcs, generic{fn, fd.Body})
			}
		}
	}
	local := map[*types.Func][]rowParam{}
	for changed := true; changed; {
		changed = false
		for _, g := range funcs {
			own := g.fn.Signature().TypeParams()
			ast.Inspect(g.body, func(n ast.Node) bool {
				id, ok := n.(*ast.Ident)
				if !ok {
					return true
				}
				inst, ok := pass.TypesInfo.Instances[id]
				if !ok {
					return true
				}
				callee, ok := pass.TypesInfo.Uses[id].(*types.Func)
				if !ok {
					return true
				}
				for _, p := range rowParamsOf(pass, local, callee.Origin()) {
					if p.Index >= inst.TypeArgs.Len() {
						continue
					}
					tp, ok := inst.TypeArgs.At(p.Index).(*types.TypeParam)
					if !ok || tp.Index() >= own.Len() || own.At(tp.Index()) != tp {
						continue
					}
					if !slices.ContainsFunc(local[g.fn], func(r rowParam) bool { return r.Index == tp.Index() }) {
						local[g.fn] = append(local[g.fn], rowParam{Index: tp.Index(), Verb: p.Verb})
						changed = true
					}
				}
				return true
			})
		}
	}
	for fn, params := range local {
		if fn.Exported() { // only an exported function is called from another package
			pass.ExportObjectFact(fn, &rowParams{Params: params})
		}
	}
	return local
}

// funcName names fn as a call site in package q's view writes it.
func funcName(fn *types.Func, q types.Qualifier) string {
	if p := q(fn.Pkg()); p != "" {
		return p + "." + fn.Name()
	}
	return fn.Name()
}

func typeArgs(l *types.TypeList, q types.Qualifier) string {
	var args []string
	for i := range l.Len() {
		args = append(args, types.TypeString(l.At(i), q))
	}
	return strings.Join(args, ", ")
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
