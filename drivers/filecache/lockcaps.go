package filecache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cachekit/cache/driver"
)

// The capabilities the lock builds on beyond Create and CompareAndDelete: renewal
// (Extend), compare-and-swap (Once), fencing numbers and the remaining TTL. Each is one
// read and at most one rename under the key's stripe lock, so atomic across processes.

var (
	_ driver.TTLReader = (*Driver)(nil)
)

// fenceDirName is the directory of the fencing counters, one file per fenced key, named
// like the key's entry file and in the entry format (the value is the decimal count).
// The counters outlive their keys: Delete, DeleteNamespace, Flush and the sweep leave
// them, so the numbers handed out for a key keep growing for the life of Dir.
const fenceDirName = ".fence"

// write writes key's entry at path: a temporary file renamed over it. The caller holds
// the stripe.
func (d *Driver) write(key, path string, val []byte, expires int64) error {
	tmp, err := d.writeTemp(encodeEntry(key, val, expires))
	if err != nil {
		return err
	}
	return d.commit(tmp, path)
}

// Extend sets key's TTL to ttl from now if its live value is old, a []byte.
func (d *Driver) Extend(ctx context.Context, key string, old any, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("%sExtend with TTL %v: want > 0", errorPrefix, ttl)
	}
	return d.ifHolds(ctx, key, old, func(path string, cur entry) error {
		return d.write(key, path, cur.val, d.expiry(ttl))
	})
}

// CompareAndSwap writes e if e.Key's live value is old, a []byte.
func (d *Driver) CompareAndSwap(ctx context.Context, old any, e driver.Entry) (bool, error) {
	v, err := bytesOf(e.Value)
	if err != nil {
		return false, err
	}
	return d.ifHolds(ctx, e.Key, old, func(path string, cur entry) error {
		exp := d.expiry(e.TTL)
		if e.KeepTTL {
			exp = cur.expires
		}
		return d.write(e.Key, path, v, exp)
	})
}

// ifHolds runs change under key's stripe lock if key's live value is old (a []byte), and
// reports whether it ran: the one compare step of CompareAndDelete, Extend and
// CompareAndSwap.
func (d *Driver) ifHolds(ctx context.Context, key string, old any, change func(path string, cur entry) error) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, err
	}
	if err := checkKey(key); err != nil {
		return false, err
	}
	want, err := bytesOf(old)
	if err != nil {
		return false, err
	}
	name := fileName(key)
	path := d.path(name)
	s, err := d.lock(name)
	if err != nil {
		return false, err
	}
	defer d.unlock(s)
	cur, st, err := d.read(key, path)
	if err != nil || st != live || !bytes.Equal(cur.val, want) {
		return false, err
	}
	if err := change(path, cur); err != nil {
		return false, err
	}
	return true, nil
}

// CreateFenced creates e if absent or expired and then returns the key's next fencing
// number, from a counter in Dir/.fence that outlives the key. The counter is always
// written with fsync, whatever Options.Sync, so that a power loss cannot hand out a
// number twice. A counter file that is damaged is an error, never a restart from 1.
func (d *Driver) CreateFenced(ctx context.Context, e driver.Entry) (int64, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, err
	}
	if err := checkKey(e.Key); err != nil {
		return 0, false, err
	}
	v, err := bytesOf(e.Value)
	if err != nil {
		return 0, false, err
	}
	name := fileName(e.Key)
	path := d.path(name)
	s, err := d.lock(name)
	if err != nil {
		return 0, false, err
	}
	defer d.unlock(s)
	if _, st, err := d.read(e.Key, path); err != nil || st == live {
		return 0, false, err
	}
	fence, err := d.nextFence(e.Key, name)
	if err != nil {
		return 0, false, err
	}
	// The counter is on disk first: a crash here leaves a gap in the numbers, never a
	// number handed out twice.
	if err := d.write(e.Key, path, v, d.expiry(e.TTL)); err != nil {
		return 0, false, err
	}
	return fence, true, nil
}

// nextFence increments and returns key's fencing counter. The caller holds the stripe.
func (d *Driver) nextFence(key, name string) (int64, error) {
	dir := filepath.Join(d.dir, fenceDirName)
	path := filepath.Join(dir, name)
	var n int64
	b, err := readRegular(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return 0, fmt.Errorf("%s%w", errorPrefix, err)
		}
	case err != nil:
		return 0, fmt.Errorf("%sfence counter: %w", errorPrefix, err)
	default:
		e, err := decodeEntry(b)
		if err == nil && e.key != key {
			err = fmt.Errorf("%w: holds key %q", ErrCorrupt, e.key)
		}
		if err == nil {
			n, err = strconv.ParseInt(string(e.val), 10, 64)
		}
		if err != nil {
			err = fmt.Errorf("%sfence counter %s: %w", errorPrefix, path, err)
			d.report(err)
			return 0, err
		}
	}
	n++
	tmp, err := os.CreateTemp(d.dir, tempPrefix)
	if err != nil {
		return 0, fmt.Errorf("%s%w", errorPrefix, err)
	}
	_, err = tmp.Write(encodeEntry(key, strconv.AppendInt(nil, n, 10), 0))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return 0, fmt.Errorf("%sfence counter: %w", errorPrefix, err)
	}
	if err := syncDir(dir); err != nil {
		return 0, err
	}
	return n, nil
}

// TTL returns key's remaining time to live (0: no expiry); found is false for a missing,
// expired or corrupt entry. It takes no lock: the read is a consistent snapshot.
func (d *Driver) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, err
	}
	if err := checkKey(key); err != nil {
		return 0, false, err
	}
	e, st, err := d.read(key, d.path(fileName(key)))
	if err != nil || st != live {
		return 0, false, err
	}
	if e.expires == 0 {
		return 0, true, nil
	}
	left := time.Duration(e.expires - d.nowNano())
	if left <= 0 {
		return 0, false, nil
	}
	return left, true, nil
}
