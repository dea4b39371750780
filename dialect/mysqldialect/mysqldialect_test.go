package mysqldialect_test

import (
	"testing"

	"github.com/racefree/racefree/dialect/dialecttest"
)

func TestConformance(t *testing.T) { dialecttest.Run(t, "mysql") }
