// Package apidiff pins the version of golang.org/x/exp/cmd/apidiff that
// .ci/apidiff builds to check racefree's exported API against its last
// release tag. It holds no code of its own.
package apidiff
