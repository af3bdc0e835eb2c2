package rediscache

// NearFresh reports whether d's near cache vouches for its copies now (the tracking
// connections have proved, within MaxStaleness, that they receive invalidations).
func NearFresh(d *Driver) bool { return d.near != nil && d.near.fresh() }

// NearHas reports whether d's near tier holds a copy of key.
func NearHas(d *Driver, key string) bool {
	if d.near == nil {
		return false
	}
	_, ok := d.near.local.GetIfPresent(key)
	return ok
}
