package driver

// Near is implemented by drivers that keep, in process, copies of values that live in a
// shared store, and drop a copy as soon as the store reports that its key changed: a
// near cache (rediscache with Options.Near). The manager (package cache) reads through
// it on Get, GetAs and Remember: it asks NearGet first; on a miss it takes a ticket with
// NearReserve, reads the store with Get, decodes, and hands the decoded value back with
// NearFill. A hit then costs neither a round trip nor decoding.
//
// The driver owns coherence: NearGet must return only a copy that it can vouch for now
// (one whose key has not changed in the store, as far as the store has told it within
// the driver's own staleness bound), and NearFill must drop a value whose key changed,
// or whose changes the driver may have missed, after the ticket was taken. The driver's
// own writes drop its copy of the key before they return. Absent: every read goes to
// the store.
type Near interface {
	// NearGet returns the decoded value kept for key, if there is one that is current.
	NearGet(key string) (v any, ok bool)
	// NearGetJoined is NearGet(scope+"."+key), without building that string, so that a
	// near hit under a prefix or namespace allocates nothing. scope is not empty.
	NearGetJoined(scope, key string) (v any, ok bool)
	// NearReserve is called before the manager reads key from the store. It returns a
	// ticket for NearFill, or 0 when the driver keeps nothing (the near cache is off or
	// cannot vouch for a copy now): the manager then does not call NearFill.
	NearReserve(key string) (ticket uint64)
	// NearFill keeps v, the decoded value the manager read for key after NearReserve
	// returned ticket, unless key changed (or the driver may have missed a change)
	// since. v is shared with every later reader, as an in-process driver's values are.
	NearFill(key string, v any, ticket uint64)
}
