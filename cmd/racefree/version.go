package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// VersionCommand prints the version of racefree this binary was built
// from: the module version when it was installed with
// `go install github.com/racefree/racefree/cmd/racefree@vX.Y.Z`, "(devel)"
// when it was built from a checkout.
type VersionCommand struct{}

// Run prints the version line.
func (c *VersionCommand) Run(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usagef("version takes no arguments, got %q", args[0])
	}
	_, err := fmt.Fprintf(stdout, "racefree %s (%s)\n", moduleVersion(), runtime.Version())
	return err
}

// moduleVersion is the version of the main module as the go command
// recorded it in the binary.
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" {
		return "(devel)"
	}
	return info.Main.Version
}
