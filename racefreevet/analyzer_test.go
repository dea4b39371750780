package racefreevet_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/racefree/racefree/racefreevet"
)

// The packages under testdata/src import a stub of racefree (same path,
// same signatures, no behaviour): the analyzer matches racefree's
// functions by import path and name, so its tests need no dependency on
// the real module, and the module can be installed with go install.
// agree_test.go compares the verdicts with the real library.

func TestRowTypes(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), racefreevet.Analyzer, "rows")
}

func TestGenericWrappers(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), racefreevet.Analyzer, "generic", "wrapped")
}

func TestValuesOf(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), racefreevet.Analyzer, "valuesof")
}

// The stub itself calls GetOrCreate with its own type parameter: nothing
// to report inside the library.
func TestLibraryItself(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), racefreevet.Analyzer, "github.com/racefree/racefree")
}
