//go:build tools

package tidb

import _ "github.com/pingcap/tidb/cmd/tidb-server"
