package faultproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"
)

// Set keeps one Proxy per target address, created on first dial, for clients
// that dial many nodes (Redis Cluster, Sentinel). Freeze, Thaw, Delay and Drop
// set a state that applies to every proxy of the set, current and future;
// Reset acts once on the proxies that exist. All methods are safe for
// concurrent use.
type Set struct {
	mu       sync.Mutex
	byTarget map[string]*Proxy
	proxies  []*Proxy // in creation order
	frozen   bool
	delay    time.Duration
	drop     bool
	closed   bool
}

// NewSet returns an empty set.
func NewSet() *Set {
	return &Set{byTarget: make(map[string]*Proxy)}
}

// Dial dials the proxy for addr, creating it if needed. It has the shape of
// go-redis's Options.Dialer; network must be a TCP network.
func (s *Set) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("faultproxy: dial %s %s: only TCP is proxied", network, addr)
	}
	p, err := s.proxy(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", p.Addr())
}

// Route creates the proxy for target now, if it does not exist yet, and
// returns the address to dial instead of target. It is for a client in another
// process: see Dialer and EncodeRoutes.
func (s *Set) Route(target string) (proxyAddr string, err error) {
	p, err := s.proxy(target)
	if err != nil {
		return "", err
	}
	return p.Addr(), nil
}

// Proxies returns the proxies of the set in the order they were created.
func (s *Set) Proxies() []*Proxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proxy(nil), s.proxies...)
}

// Freeze freezes every proxy of the set, and those created later, until Thaw.
func (s *Set) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = true
	for _, p := range s.proxies {
		p.Freeze()
	}
}

// Thaw thaws every proxy of the set; proxies created later start thawed.
func (s *Set) Thaw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = false
	for _, p := range s.proxies {
		p.Thaw()
	}
}

// Delay sets the delay of every proxy of the set, and of those created later.
func (s *Set) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
	for _, p := range s.proxies {
		p.Delay(d)
	}
}

// Drop turns the black hole on or off for every proxy of the set, and for
// those created later.
func (s *Set) Drop(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = on
	for _, p := range s.proxies {
		p.Drop(on)
	}
}

// Reset resets the open connections of every proxy of the set.
func (s *Set) Reset() {
	for _, p := range s.Proxies() {
		p.Reset()
	}
}

// Close closes every proxy of the set; Dial and Route fail afterwards.
func (s *Set) Close() error {
	s.mu.Lock()
	s.closed = true
	ps := s.proxies
	s.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

func (s *Set) proxy(target string) (*Proxy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("faultproxy: proxy for %s: %w", target, net.ErrClosed)
	}
	if p, ok := s.byTarget[target]; ok {
		return p, nil
	}
	p, err := New(target)
	if err != nil {
		return nil, err
	}
	if s.frozen {
		p.Freeze()
	}
	p.Delay(s.delay)
	p.Drop(s.drop)
	s.byTarget[target] = p
	s.proxies = append(s.proxies, p)
	return p, nil
}

// Dialer returns a dial function, of the shape of go-redis's Options.Dialer,
// that dials routes[addr] when addr is a key of routes and addr itself
// otherwise. Keys must be spelled exactly as the client spells the addresses
// it dials. routes is copied.
func Dialer(routes map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	routes = maps.Clone(routes)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := routes[addr]; ok {
			addr = to
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// EncodeRoutes encodes an address mapping (target to proxy address) as a
// single line fit for an environment variable; DecodeRoutes reverses it. An
// empty mapping encodes as "".
func EncodeRoutes(routes map[string]string) string {
	if len(routes) == 0 {
		return ""
	}
	b, err := json.Marshal(routes)
	if err != nil { // cannot happen for a map of strings
		panic(err)
	}
	return string(b)
}

// DecodeRoutes decodes what EncodeRoutes produced. "" decodes as an empty,
// non-nil mapping.
func DecodeRoutes(s string) (map[string]string, error) {
	routes := make(map[string]string)
	if s == "" {
		return routes, nil
	}
	if err := json.Unmarshal([]byte(s), &routes); err != nil {
		return nil, fmt.Errorf("faultproxy: decode routes: %w", err)
	}
	if routes == nil { // "null"
		routes = make(map[string]string)
	}
	return routes, nil
}
