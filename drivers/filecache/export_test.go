package filecache

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
