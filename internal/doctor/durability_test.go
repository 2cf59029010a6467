package doctor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJudgeDurability covers the settings a test server cannot be put in
// (fsync off, standbys, replicas); doctor_test.go checks the reading of
// the real settings.
func TestJudgeDurability(t *testing.T) {
	t.Parallel()
	durable := durabilitySettings{fsync: "on", fullPageWrites: "on", syncCommit: "on", seesReplicas: true}
	with := func(f func(*durabilitySettings)) durabilitySettings { s := durable; f(&s); return s }
	tests := []struct {
		name   string
		s      durabilitySettings
		status Status
		detail string
	}{
		{"durable on one node", durable, Pass, "synchronous_commit=on"},
		{"fsync off", with(func(s *durabilitySettings) { s.fsync = "off" }), Fail, "fsync=off"},
		{"full_page_writes off", with(func(s *durabilitySettings) { s.fullPageWrites = "off" }), Fail, "full_page_writes=off"},
		{"synchronous_commit off", with(func(s *durabilitySettings) { s.syncCommit = "off" }), Fail, "synchronous_commit=off"},
		{"standby not waited for", with(func(s *durabilitySettings) { s.syncCommit = "local"; s.syncStandbys = "s1" }), Warn, `synchronous_standby_names="s1"`},
		{"standby waited for", with(func(s *durabilitySettings) { s.syncStandbys = "s1" }), Pass, "synchronous_commit=on"},
		{"replicas hidden from the role", with(func(s *durabilitySettings) { s.seesReplicas = false }), Warn, "replicas not visible"},
		{"asynchronous replicas only", with(func(s *durabilitySettings) { s.asyncReplicas = 2 }), Warn, "2 asynchronous replicas"},
		{"asynchronous replicas beside a synchronous one", with(func(s *durabilitySettings) { s.asyncReplicas = 2; s.syncStandbys = "s1" }), Pass, "synchronous_commit=on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := judgeDurability(tt.s)
			require.Equal(t, tt.status, c.Status, c.Detail)
			require.Contains(t, c.Detail, tt.detail)
			if c.Status != Pass {
				require.NotEmpty(t, c.Hint, "every warning and failure says what to do")
			}
		})
	}
}
