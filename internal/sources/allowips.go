package sources

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseAllowIPs reads allow_ips: each entry a network in CIDR notation
// ("192.0.2.0/24", "2001:db8::/32") or a single address ("203.0.113.7",
// taken as /32 or /128). A network with host bits set, such as
// 192.0.2.5/24, is refused rather than silently widened or narrowed: the
// operator probably meant something else.
func parseAllowIPs(c Config, i int) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for j, entry := range c.AllowIPs {
		field := fmt.Sprintf("allow_ips[%d]", j)
		p, err := ParseNetwork(entry)
		if err != nil {
			return nil, fieldError(c, i, field, "%v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseNetwork parses one allowlist or trusted-proxy entry: a CIDR network
// or a single IP address. IPv4-mapped IPv6 forms are unmapped, and zones
// are refused.
func ParseNetwork(entry string) (netip.Prefix, error) {
	s := strings.TrimSpace(entry)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry")
	}
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR network", entry)
		}
		if addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", entry)
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		// netip's error names its own function; say which half is wrong.
		addr, _, _ := strings.Cut(s, "/")
		a, err := netip.ParseAddr(addr)
		switch {
		case err != nil:
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR network: the part before / is not an IP address", entry)
		case a.Zone() != "":
			return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", entry)
		}
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR network: the length after / must be a number from 0 to %d", entry, a.BitLen())
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped network must be /96 or longer", entry)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", entry, p.Masked())
	}
	return p, nil
}
