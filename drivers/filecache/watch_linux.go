package filecache

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// inotify is the Linux event source: an inotify(7) instance whose watch on Dir exists
// only while some Watch is pending, read by one goroutine until Close.
type inotify struct {
	d  *Driver
	w  *watches
	f  *os.File
	fd int
	wd int // the watch on Dir, -1 when none
}

const inotifyMask = syscall.IN_DELETE | syscall.IN_MOVED_TO | syscall.IN_MOVED_FROM |
	syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR

func newEventSource(d *Driver, w *watches) eventSource {
	if forcePoller {
		return newPoller(d, w)
	}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return newPoller(d, w) // out of inotify instances: poll instead
	}
	// A trial watch: a file system without inotify support, or no watches left, means
	// polling instead.
	wd, err := syscall.InotifyAddWatch(fd, d.dir, inotifyMask)
	if err != nil {
		_ = syscall.Close(fd)
		return newPoller(d, w)
	}
	_, _ = syscall.InotifyRmWatch(fd, uint32(wd))
	// A non-blocking descriptor: reads wait in the runtime's poller, and Close ends them.
	in := &inotify{d: d, w: w, f: os.NewFile(uintptr(fd), "inotify"), fd: fd, wd: -1}
	go in.run()
	return in
}

func (in *inotify) watching(on bool) {
	switch {
	case on && in.wd < 0:
		wd, err := syscall.InotifyAddWatch(in.fd, in.d.dir, inotifyMask)
		if err != nil {
			// Rare after the trial watch (the watch limit reached since): waiters then
			// wake on their own polling only.
			in.d.report(fmt.Errorf("%swatch: %w", errorPrefix, err))
			return
		}
		in.wd = wd
	case !on && in.wd >= 0:
		_, _ = syscall.InotifyRmWatch(in.fd, uint32(in.wd))
		in.wd = -1
	}
}

func (in *inotify) close() { _ = in.f.Close() }

func (in *inotify) run() {
	defer close(in.w.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := in.f.Read(buf)
		if err != nil {
			return // closed
		}
		for b := buf[:n]; len(b) >= syscall.SizeofInotifyEvent; {
			mask := binary.NativeEndian.Uint32(b[4:])
			l := int(binary.NativeEndian.Uint32(b[12:]))
			if len(b) < syscall.SizeofInotifyEvent+l {
				break
			}
			name := b[syscall.SizeofInotifyEvent : syscall.SizeofInotifyEvent+l]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			b = b[syscall.SizeofInotifyEvent+l:]
			switch {
			case mask&(syscall.IN_Q_OVERFLOW|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF) != 0:
				in.w.reg.NotifyIf(nil)
			case mask&syscall.IN_IGNORED != 0:
				// the watch was removed: by watching(false), or because Dir went away
			case len(name) > 0:
				in.w.reg.Notify(string(name))
			}
		}
	}
}
