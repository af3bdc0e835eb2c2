package filecache

import "os"

// Internals for the tests of package filecache_test.

// FileName is the file name of a key.
var FileName = fileName

// KeyOfName decodes a file name: the key for a direct name, the readable start of the
// key for a hashed one. ok is false for a name that is not an entry's.
func KeyOfName(name string) (key string, hashed, ok bool) {
	p, ok := parseName(name)
	return p.key, p.hashed, ok
}

// PathOf returns the path of key's file.
func (d *Driver) PathOf(key string) string { return d.path(fileName(key)) }

// ForcePoller makes the drivers opened after it poll for Watch instead of using inotify.
func ForcePoller(on bool) { forcePoller = on }

// SweepStep is one bounded run of the background sweep: at most limit directory entries
// of the directory read by cur (opened when nil); nil when the directory is done.
func (d *Driver) SweepStep(cur *os.File, limit int) (*os.File, int, error) {
	return d.sweepFrom(cur, limit, func() bool { return false })
}
