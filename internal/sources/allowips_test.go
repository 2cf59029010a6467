package sources_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/sources"
)

func TestAllowIPsAreParsedIntoNetworksAndSummarised(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
sources:
  - name: stripe
    type: stripe
    allow_ips: ["192.0.2.0/24", "2001:db8::/32", "203.0.113.7", "2001:db8:ffff::1", "::ffff:198.51.100.0/120"]
    secrets: [{label: current, env: STRIPE_SECRET}]
  - name: gh
    type: github
    secrets: [{label: current, env: GH_SECRET}]
`)
	srcs, sums, err := sources.Load(getenv(secretEnv), path, time.Minute)
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("203.0.113.7/32"),
		netip.MustParsePrefix("2001:db8:ffff::1/128"),
		netip.MustParsePrefix("198.51.100.0/24"),
	}, srcs[0].AllowIPs)
	require.Equal(t, []string{"192.0.2.0/24", "2001:db8::/32", "203.0.113.7/32", "2001:db8:ffff::1/128", "198.51.100.0/24"}, sums[0].AllowIPs)
	require.Empty(t, srcs[1].AllowIPs, "no allow_ips: every address")
	require.Empty(t, sums[1].AllowIPs)
}

func TestAllowIPsErrorsNameTheSourceAndTheEntry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		entry, want string
	}{
		{`"192.0.2.0/33"`, `line 5: sources.s.allow_ips[1]: "192.0.2.0/33" is not a CIDR network: the length after / must be a number from 0 to 32`},
		{`"192.0.2.5/24"`, `sources.s.allow_ips[1]: "192.0.2.5/24" has host bits set; did you mean 192.0.2.0/24?`},
		{`"stripe.com"`, `sources.s.allow_ips[1]: "stripe.com" is neither an IP address nor a CIDR network`},
		{`""`, `sources.s.allow_ips[1]: empty entry`},
		{`"fe80::1%eth0"`, `sources.s.allow_ips[1]: "fe80::1%eth0": zones are not allowed`},
		{`"10.0.0.0/8 "`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, `
sources:
  - name: s
    type: github
    allow_ips: ["10.0.0.1", `+tt.entry+`]
    secrets: [{label: current, env: GH_SECRET}]
`)
			_, _, err := sources.Load(getenv(secretEnv), path, time.Minute)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, sources.ErrConfig)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
