package rediscache

// NearOptions configure the near cache (Options.Near).
type NearOptions struct {
}

// near is the near cache's state. nil: off.
type near struct{}

// startNear starts the near cache of d.
func startNear(d *Driver, o NearOptions) (*near, error) { return &near{}, nil }

// stop stops the near cache; nil does nothing.
func (n *near) stop() error { return nil }

// NearGet implements driver.Near.
func (d *Driver) NearGet(key string) (any, bool) { return nil, false }

// NearReserve implements driver.Near.
func (d *Driver) NearReserve(key string) uint64 { return 0 }

// NearFill implements driver.Near.
func (d *Driver) NearFill(key string, v any, ticket uint64) {}
