package filecache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Scan calls fn with every live key that starts with prefix ("" for every key), until fn
// returns false. It reads the directory, O(files), and the head of every entry file
// whose name may match: the key comes from the name, or from the file for a long key's
// hashed name. The driver's own files (the marker, .lock, .fence, temporary files),
// files it did not write, expired entries and corrupt ones (reported to
// Options.OnError) are skipped. Keys come in no particular order; a key written or
// deleted during the scan may or may not be seen.
func (d *Driver) Scan(ctx context.Context, prefix string, fn func(key string) bool) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	return d.eachName(ctx, "scan: ", func(name string) (bool, error) {
		key, ok, err := d.scanEntry(name, prefix)
		if err != nil {
			return false, err
		}
		return !ok || fn(key), nil
	})
}

// scanEntry returns the key of the directory entry name when it is a live entry whose
// key starts with prefix.
func (d *Driver) scanEntry(name, prefix string) (key string, ok bool, err error) {
	p, ok := parseName(name)
	if !ok {
		return "", false, nil // the driver's own files, or not the driver's
	}
	if p.hashed {
		// Only the readable start of the key is known: it must agree with prefix as far
		// as both go.
		if !strings.HasPrefix(p.key, prefix) && !strings.HasPrefix(prefix, p.key) {
			return "", false, nil
		}
	} else if !strings.HasPrefix(p.key, prefix) {
		return "", false, nil
	}
	path := d.path(name)
	h, stored, err := readHead(path, p.hashed)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrNotRegular):
		return "", false, nil // gone since the listing, or not an entry
	case errors.Is(err, ErrCorrupt):
		d.report(err)
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("%sscan: %w", errorPrefix, err)
	}
	key = p.key
	if p.hashed {
		key = stored
		if fileName(key) != name {
			d.report(fmt.Errorf("%s: %w: holds key %q, which is not this file's", path, ErrCorrupt, key))
			return "", false, nil
		}
		if !strings.HasPrefix(key, prefix) {
			return "", false, nil
		}
	} else if stored != "" && stored != key {
		// A small file is read whole (readHead) and its stored key is known.
		d.report(fmt.Errorf("%s: %w: holds key %q, not %q", path, ErrCorrupt, stored, key))
		return "", false, nil
	}
	if h.expires != 0 && d.nowNano() >= h.expires {
		return "", false, nil
	}
	return key, true, nil
}
