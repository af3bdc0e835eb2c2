package filecache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// sweeper runs the background sweep every interval until Close. Each run examines at
// most sweepBatch directory entries and the next run goes on from there, so a huge
// directory costs a bounded amount of work per interval.
func (d *Driver) sweeper(interval time.Duration) {
	defer close(d.swept)
	t := time.NewTicker(interval)
	defer t.Stop()
	var cur *os.File // the directory, read on from one run to the next
	defer func() {
		if cur != nil {
			_ = cur.Close()
		}
	}()
	stopped := func() bool { return d.closed.Load() }
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		var err error
		cur, _, err = d.sweepFrom(cur, sweepBatch, stopped)
		if err != nil {
			d.report(err)
		}
	}
}

// Sweep examines every file in Dir once and removes expired entries, corrupt entries
// (reported to Options.OnError) and temporary files older than ten minutes that a
// crashed writer left. It returns how many files it removed. The background sweep does
// the same in bounded steps; Sweep is for a driver opened with a negative
// SweepInterval, or for tests.
func (d *Driver) Sweep(ctx context.Context) (removed int, err error) {
	if err := d.check(ctx); err != nil {
		return 0, err
	}
	stopped := func() bool { return d.closed.Load() || ctx.Err() != nil }
	var cur *os.File
	cur, removed, err = d.sweepFrom(nil, -1, stopped)
	if cur != nil { // stopped half-way
		_ = cur.Close()
	}
	if err == nil && stopped() {
		err = d.check(ctx)
	}
	return removed, err
}

// sweepFrom sweeps at most limit entries (all if limit < 0) of the directory read by
// cur (opened when nil). It returns the directory to continue from, nil at its end.
func (d *Driver) sweepFrom(cur *os.File, limit int, stopped func() bool) (*os.File, int, error) {
	if cur == nil {
		f, err := os.Open(d.dir)
		if err != nil {
			return nil, 0, fmt.Errorf("%ssweep: %w", errorPrefix, err)
		}
		cur = f
	}
	removed, seen := 0, 0
	for limit < 0 || seen < limit {
		n := 256
		if limit >= 0 {
			n = min(n, limit-seen)
		}
		names, err := cur.Readdirnames(n)
		for _, name := range names {
			if stopped() {
				return cur, removed, nil
			}
			gone, err := d.sweepOne(name)
			if err != nil {
				d.report(err)
			}
			if gone {
				removed++
			}
		}
		seen += len(names)
		if err != nil {
			_ = cur.Close()
			if errors.Is(err, io.EOF) {
				return nil, removed, nil
			}
			return nil, removed, fmt.Errorf("%ssweep: %w", errorPrefix, err)
		}
	}
	return cur, removed, nil
}

// sweepOne removes the file name if it is a stale temporary file, or an entry that has
// expired or is corrupt when looked at under its stripe lock.
func (d *Driver) sweepOne(name string) (bool, error) {
	path := d.path(name)
	if isTemp(name) {
		info, err := os.Lstat(path)
		if err != nil || time.Since(info.ModTime()) < staleTempAge {
			return false, nil // gone, or a write still in flight
		}
		if !info.Mode().IsRegular() {
			return false, notRegular(path, info.Mode()) // not a temporary file of ours
		}
		if err := unlink(path); err != nil {
			return false, fmt.Errorf("%ssweep: %w", errorPrefix, err)
		}
		return true, nil
	}
	if _, ok := parseName(name); !ok {
		return false, nil // the lock directory, the marker, or not the driver's
	}
	// A first look at the header alone, without the lock: most files are live. One that
	// is not a regular file is another program's: left, and reported.
	h, _, err := readHead(path, false)
	if errors.Is(err, ErrNotRegular) {
		return false, err
	}
	if errors.Is(err, fs.ErrNotExist) || err == nil && (h.expires == 0 || d.nowNano() < h.expires) {
		return false, nil
	}
	s, err := d.lock(name)
	if err != nil {
		return false, err
	}
	defer d.unlock(s)
	h, key, readErr := readHead(path, d.expiryHooks.Active()) // the key, to report the expiry
	switch {
	case errors.Is(readErr, fs.ErrNotExist), errors.Is(readErr, ErrNotRegular):
		return false, nil
	case errors.Is(readErr, ErrCorrupt):
		d.report(readErr)
	case readErr != nil:
		return false, fmt.Errorf("%ssweep: %w", errorPrefix, readErr)
	case h.expires == 0 || d.nowNano() < h.expires:
		return false, nil // rewritten since the first look
	}
	if err := d.remove(path); err != nil {
		return false, err
	}
	if readErr == nil { // expired, not corrupt
		d.expiryHooks.Expired(key)
	}
	return true, nil
}

// verifyLimit is the size up to which readHead reads and verifies a whole file.
const verifyLimit = 64 << 10

// readHead reads the header of the file at path and, with withKey, the key after it.
// The file's size must match the header, and a file of at most verifyLimit bytes is read
// whole and its checksum verified. A missing file is an error matching
// fs.ErrNotExist, a malformed one an error matching ErrCorrupt, and anything but a
// regular file (never followed, never waited on: see openRegular) one matching
// ErrNotRegular.
func readHead(path string, withKey bool) (header, string, error) {
	f, info, err := openRegular(path)
	if err != nil {
		return header{}, "", err
	}
	defer f.Close()
	var hb [headerSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return header{}, "", fmt.Errorf("%s: %w: %d bytes, shorter than the header", path, ErrCorrupt, info.Size())
		}
		return header{}, "", err
	}
	h, err := decodeHeader(hb[:])
	if err != nil {
		return header{}, "", fmt.Errorf("%s: %w", path, err)
	}
	if want := headerSize + uint64(h.keyLen) + h.valLen + crcSize; uint64(info.Size()) != want {
		return header{}, "", fmt.Errorf("%s: %w: %d bytes, the header says %d", path, ErrCorrupt, info.Size(), want)
	}
	if !withKey && info.Size() > verifyLimit {
		return h, "", nil
	}
	if info.Size() <= verifyLimit {
		// A small file costs the same system calls read whole: check its checksum too.
		b := make([]byte, info.Size())
		copy(b, hb[:])
		if _, err := io.ReadFull(f, b[headerSize:]); err != nil {
			return header{}, "", fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
		}
		e, err := decodeEntry(b)
		if err != nil {
			return header{}, "", fmt.Errorf("%s: %w", path, err)
		}
		return h, e.key, nil
	}
	kb := make([]byte, h.keyLen)
	if _, err := io.ReadFull(f, kb); err != nil {
		return header{}, "", fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	return h, string(kb), nil
}
