package filecache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/cachekit/cache/driver"
)

// Things in Dir that the driver did not write.
//
// Every file the driver writes is a regular file, made by a rename of its own temporary
// file. Anything else with an entry's name (a named pipe, a directory, a socket, a
// device, a symbolic link) was put there by someone else, and the driver never reads
// it, follows it or removes it in passing:
//
//   - A read opens with O_NOFOLLOW|O_NONBLOCK and checks with fstat that it opened a
//     regular file before reading a byte: a named pipe never blocks it, a symbolic link
//     is never followed out of Dir. Such a key reads as an error matching
//     [ErrNotRegular] that names the file: never a miss, which would let the caller
//     write over it believing the key empty.
//   - A plain write (Set, SetMany) is a rename over the name, which replaces a pipe, a
//     socket or a link (the link itself, never what it points to) and fails, with an
//     error matching ErrNotRegular, over a directory. Delete unlinks a pipe, a socket or
//     a link (never its target), and fails the same way on a directory, even an empty
//     one. Both are explicit writes of that key.
//   - Flush, DeleteNamespace and the sweep skip it and report it to Options.OnError, on
//     every call: it is not an entry of the cache's, so it is not their error (Flush
//     returns nil when it removed every entry, or every call would fail until someone
//     removed the thing by hand).

// ErrNotRegular matches, with errors.Is, the error for a key whose file in Dir is not a
// regular file: a named pipe, a directory, a socket, a device or a symbolic link, which
// the driver never writes and so another program made. The driver leaves it alone: a
// read of the key returns this error (never a miss, and never blocks), and Flush and
// the sweep skip it and report it to Options.OnError. A Set or Delete of the key
// replaces or removes it, except a directory, which they refuse with this error.
var ErrNotRegular = fmt.Errorf("%w: filecache: not a regular file", driver.ErrForeign)

// notRegular is the error for the non-regular file at path, of the given mode.
func notRegular(path string, mode fs.FileMode) error {
	return fmt.Errorf("%w: %s is a %s, which the cache did not write and leaves alone", ErrNotRegular, path, kindOf(mode))
}

func kindOf(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		return "symbolic link"
	case mode.IsDir():
		return "directory"
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeCharDevice != 0:
		return "character device"
	case mode&fs.ModeDevice != 0:
		return "block device"
	}
	return "file of another kind"
}

// openRegular opens the regular file at path for reading, without following a symbolic
// link and without blocking on a named pipe or a device. Anything but a regular file is
// an error matching ErrNotRegular; a missing file one matching fs.ErrNotExist.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow|openNonblock, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		// O_NOFOLLOW fails on a link (ELOOP; EMLINK on FreeBSD): say what is there.
		if info, lerr := os.Lstat(path); lerr == nil && !info.Mode().IsRegular() {
			return nil, nil, notRegular(path, info.Mode())
		}
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, notRegular(path, info.Mode())
	}
	return f, info, nil
}

// readRegular reads the whole regular file at path, as os.ReadFile, through openRegular.
// Files in Dir are replaced by rename and never written in place, so the size fstat
// gave is the size to read.
func readRegular(path string) ([]byte, error) {
	f, info, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := info.Size()
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s: %d bytes, too large to read", path, size)
	}
	b := make([]byte, size)
	n, err := io.ReadFull(f, b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return b[:n], nil // shorter than its size said: the decoder calls it corrupt
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// checkRegular reports, with an error matching ErrNotRegular, a file at path that is
// not a regular file. A missing file, or one Lstat cannot see, is not its business.
func checkRegular(path string) error {
	info, err := os.Lstat(path)
	if err == nil && !info.Mode().IsRegular() {
		return notRegular(path, info.Mode())
	}
	return nil
}

// unlink removes the name path, never a directory (os.Remove would remove an empty
// one): a directory is an error matching ErrNotRegular. A missing file is not an error.
func unlink(path string) error {
	err := syscall.Unlink(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if nerr := checkRegular(path); nerr != nil {
		return nerr
	}
	return &fs.PathError{Op: "remove", Path: path, Err: err}
}

// skipped counts the entries Flush and DeleteNamespace failed to remove, and went on
// past. What they left because it is not the cache's (not a regular file) goes to
// OnError only: it is not their failure, and as nobody but an operator can remove it,
// returning it would fail every later call too.
type skipped struct {
	failures int
	failure  error // the first failure
}

func (s *skipped) add(d *Driver, err error) {
	if errors.Is(err, ErrNotRegular) {
		d.report(err)
		return
	}
	s.failures++
	if s.failure == nil {
		s.failure = err
	}
}

// err is the error Flush or DeleteNamespace returns at the end: nil when they removed
// every entry of the cache's they met.
func (s *skipped) err(op string) error {
	if s.failures == 0 {
		return nil
	}
	return fmt.Errorf("%s%s: could not remove %s, the first: %w", errorPrefix, op, files(s.failures), s.failure)
}

func files(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}
