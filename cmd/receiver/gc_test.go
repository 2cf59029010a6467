package main

import "testing"

func TestGCSettings(t *testing.T) {
	t.Parallel()
	const budget = 64 << 20
	tests := []struct {
		name        string
		env         map[string]string
		budget      int64
		wantPercent int
		wantLimit   int64
	}{
		{"UnsetTakesTheReceiversDefaults", nil, 256 << 20, gcPercent, 512 << 20},
		{"LimitIsAtLeastTheMinimum", nil, 1 << 20, gcPercent, minMemoryLimit},
		{"GOGCFromTheEnvironmentLeavesBothAlone", map[string]string{"GOGC": "off"}, budget, -1, -1},
		{"GOMEMLIMITFromTheEnvironmentLeavesBothAlone", map[string]string{"GOMEMLIMIT": "400MiB"}, budget, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			percent, limit := gcSettings(func(k string) string { return tt.env[k] }, tt.budget)
			if percent != tt.wantPercent || limit != tt.wantLimit {
				t.Errorf("gcSettings = (%d, %d), want (%d, %d)", percent, limit, tt.wantPercent, tt.wantLimit)
			}
		})
	}
}
