package cache

// operation is a cache operation. Its name, from one table, is what its errors
// ([Error].Op), events ([Event].Op) and metrics ([Metrics].Ops) carry.
type operation uint8

// The operations. Those up to opDecrement are timed: Metrics keeps their latency.
const (
	opNone operation = iota // the zero value: no operation
	opGet
	opSet
	opHas
	opPull
	opRemember
	opSWR
	opLock
	opOnce
	opModify
	opIncrement
	opDecrement
	opSetWith
	opForever
	opSetMany
	opMany
	opRemove
	opRemoveMarks
	opRemoveNamespace
	opFlush
	opInvalidateTags
	opInvalidate // Memo.Invalidate
	opCached     // Memo.Key
	opList
	opScan
	opUse
	opDriver
	opSubscribe
	opRestoreLock
	opRelease
	opExtend
	opTTL
	opInspectLock
	opForceRelease
	opExpire  // a driver dropped an entry whose TTL passed
	opBreaker // a driver's circuit breaker opened or closed
	opNear    // a driver's near tier dropped or restored
	opDoctor  // a finding of a driver's checks (Config.CheckOnStart)
)

// timedOps is the number of timed operations: opGet to opDecrement.
const timedOps = int(opDecrement)

var opNames = [...]string{
	opNone: "", opGet: "Get", opSet: "Set", opHas: "Has", opPull: "Pull",
	opRemember: "Remember", opSWR: "SWR", opLock: "Lock", opOnce: "Once", opModify: "Modify",
	opIncrement: "Increment", opDecrement: "Decrement", opSetWith: "SetWith",
	opForever: "Forever", opSetMany: "SetMany", opMany: "Many", opRemove: "Remove",
	opRemoveMarks: "RemoveMarks", opRemoveNamespace: "RemoveNamespace", opFlush: "Flush",
	opInvalidateTags: "InvalidateTags", opInvalidate: "Invalidate", opCached: "Cached",
	opList: "List", opScan: "Scan", opUse: "Use", opDriver: "Driver",
	opSubscribe: "Subscribe", opRestoreLock: "RestoreLock", opRelease: "Release",
	opExtend: "Extend", opTTL: "TTL", opInspectLock: "InspectLock",
	opForceRelease: "ForceRelease", opExpire: "Expire", opBreaker: "Breaker",
	opNear: "Near", opDoctor: "Doctor",
}

// String returns the operation's name, as users see it: "Get", "Lock", ...
func (o operation) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "unknown"
}

// timed returns the index of o's latency histogram, and whether o is timed.
func (o operation) timed() (int, bool) { return int(o) - 1, o >= opGet && o <= opDecrement }
