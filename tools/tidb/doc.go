// Package tidb pins the TiDB server that racefree's CI tests against.
//
// It is a module of its own so that the racefree module never depends on
// TiDB: .ci/tidb builds github.com/pingcap/tidb/cmd/tidb-server from here at
// the version go.mod pins, and caches the binary outside the repository.
// tools.go (build tag "tools") holds the import that keeps the version in
// go.mod; this file lets `go vet ./...` find a package to vet without
// compiling TiDB.
package tidb
