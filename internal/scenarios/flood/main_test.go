package flood_test

import (
	"testing"

	"github.com/hookline/hookline/internal/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }
