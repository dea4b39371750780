// Command racefree shows the classic database races happening, and not
// happening with racefree: `racefree demo` needs nothing installed,
// `racefree lab` measures every proposed fix against your own database,
// `racefree doctor` tells whether a get-or-create on a table is safe.
package main

import (
	"context"
	"os"
)

func main() { os.Exit(Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
