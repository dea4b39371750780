//go:build tools

package apidiff

// apidiff compares a module's exported API with the one of its last
// release tag; .ci/apidiff runs it. Pinned here so that CI builds the
// same version every time and the proxy's @latest never decides.
import _ "golang.org/x/exp/cmd/apidiff"
