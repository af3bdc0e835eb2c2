package main

import (
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/drivers/rediscache"
)

// The drivers with checks have the method set cachectl doctor discovers.
var (
	_ doctor = (*pgcache.Driver)(nil)
	_ doctor = (*rediscache.Driver)(nil)
)
