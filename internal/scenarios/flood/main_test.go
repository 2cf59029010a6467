package flood_test

import (
	"testing"

	"github.com/hookline/hookline/internal/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }
