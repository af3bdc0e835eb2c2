package rediscache

import (
	"strconv"
	"strings"
	"sync"
)

// colocated returns name, or name with a hash tag appended, such that it lies in key's
// Cluster hash slot, so that one script may touch both (a script's keys must share a
// slot). name must start with key, as in key + ".|fence": then a key with a hash tag
// already shares it, and a key without braces gets "{<tag>}" with a tag chosen to land in
// key's slot. The result is the same on every topology, so that a counter survives a move
// from one node to a Cluster.
func colocated(name, key string) string {
	want := slot(key)
	if slot(name) == want {
		return name
	}
	if !strings.ContainsAny(name, "{}") {
		return name + "{" + slotTags()[want] + "}"
	}
	// A brace with no valid hash tag: the whole name is hashed, and so is any suffix
	// without braces. Search one; about 16384 tries, once per such key.
	for i := 0; i < 1<<22; i++ {
		c := name + "." + strconv.Itoa(i)
		if slot(c) == want {
			return c
		}
	}
	return name // unreachable in practice: a single node does not care anyway
}

// slotTags returns, for each Cluster hash slot, a short string that hashes to it.
var slotTags = sync.OnceValue(func() *[slotCount]string {
	var t [slotCount]string
	left := slotCount
	for i := 0; left > 0; i++ {
		s := strconv.FormatInt(int64(i), 36)
		if n := slot(s); t[n] == "" {
			t[n] = s
			left--
		}
	}
	return &t
})

// fenceKey is the key of key's fencing counter: key + ".|fence", with a hash tag that puts
// it in key's hash slot when key has none.
func fenceKey(key string) string { return colocated(key+".|fence", key) }

// releasedChannel is the Pub/Sub channel that the compare-and-delete and compare-and-swap
// scripts publish on when they change key (they build the same name in Lua), for
// [Driver.Watch].
func releasedChannel(key string) string { return key + ":released" }
