package handlers

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/presence/presence/internal/option"
)

// parseTrustedProxies reads the CIDRs (or single addresses) of the proxies
// whose X-Forwarded-For and Forwarded headers are believed
// (StreamOptions.TrustedProxies). An error names the item that is neither.
func parseTrustedProxies(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range items {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, &option.Error{Option: "Stream.TrustedProxies", Item: s, Problem: "is not a CIDR such as 10.0.0.0/8 or fd00::/8, nor an address"}
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// trusted reports whether a is in one of the prefixes.
func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the address of the client that made r. It is the
// peer's, unless the peer is a trusted proxy: then it is the rightmost
// address of X-Forwarded-For (or, if the request has none, of Forwarded's
// for= parameters) that is not itself a trusted proxy. A client may put
// anything in those headers, but only on the left of what its proxies
// append, so walking from the right past trusted hops alone reaches the
// address the first trusted proxy saw. If every hop is trusted, the
// leftmost counts; at a hop that names no address ("unknown", an
// obfuscated name, garbage), the last trusted hop counts. viaProxy reports
// that the peer is a trusted proxy; ok is false if the peer address cannot
// be read.
func clientAddr(r *http.Request, proxies []netip.Prefix) (a netip.Addr, viaProxy, ok bool) {
	peer, ok := parseNode(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false, false
	}
	if len(proxies) == 0 || !trusted(proxies, peer) {
		return peer, false, true
	}
	var hops []string
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			hops = append(hops, strings.Split(v, ",")...)
		}
	} else {
		for _, v := range r.Header.Values("Forwarded") {
			hops = append(hops, forwardedFor(v)...)
		}
	}
	a = peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseNode(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		a = hop
		if !trusted(proxies, hop) {
			break
		}
	}
	return a, true, true
}

// parseNode reads an address as X-Forwarded-For, Forwarded's for= and
// RemoteAddr give it: 192.0.2.1, 192.0.2.1:4711, 2001:db8::1,
// [2001:db8::1]:4711 or [2001:db8::1]. IPv4-mapped IPv6 becomes IPv4; a
// zone is dropped.
func parseNode(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// forwardedFor returns the for= values of one Forwarded header line (RFC
// 7239), in order, unquoted; an element without one gives "", which names
// no address. Quoted strings may hold , ; and =.
func forwardedFor(v string) []string {
	var out []string
	found, val := false, ""
	key, cur := "", strings.Builder{}
	inQuote, escaped, inValue := false, false, false
	endPair := func() {
		if inValue && strings.EqualFold(strings.TrimSpace(key), "for") && !found {
			found, val = true, strings.TrimSpace(cur.String())
		}
		key, inValue = "", false
		cur.Reset()
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			cur.WriteByte(c)
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case inQuote:
			cur.WriteByte(c)
		case c == '=' && !inValue:
			key, inValue = cur.String(), true
			cur.Reset()
		case c == ';':
			endPair()
		case c == ',':
			endPair()
			if found {
				out = append(out, val)
			} else {
				out = append(out, "")
			}
			found, val = false, ""
		default:
			cur.WriteByte(c)
		}
	}
	endPair()
	if found {
		out = append(out, val)
	} else if strings.TrimSpace(v) != "" {
		out = append(out, "")
	}
	return out
}

// sourceKey is the key under which a client's streams are bounded: its
// IPv4 address, or the /64 of its IPv6 address, since one subscriber (one
// home, one phone) is given a whole /64 and may use any address in it.
func sourceKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
