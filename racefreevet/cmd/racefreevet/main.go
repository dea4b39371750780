// Command racefreevet reports racefree row types that would fail at run
// time (see package github.com/racefree/racefree/racefreevet). Run it
// alone or as a vet tool:
//
//	racefreevet ./...
//	go vet -vettool=$(command -v racefreevet) ./...
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/racefree/racefree/racefreevet"
)

func main() { singlechecker.Main(racefreevet.Analyzer) }
