package inproc

import "context"

// JoinGetter is implemented by in-process drivers that can read a key given as a scope
// and a key, scope + "." + key, without building that string: the manager's Get, GetAs
// and Remember then read a key under a prefix or namespace with no allocation. Absent:
// the manager joins the key (one allocation under a prefix or namespace). It is internal
// because it is an optimisation of the bundled drivers, not part of the driver contract.
type JoinGetter interface {
	// GetJoined is Get(ctx, scope+"."+key). scope is not empty.
	GetJoined(ctx context.Context, scope, key string) (v any, found bool, err error)
}
