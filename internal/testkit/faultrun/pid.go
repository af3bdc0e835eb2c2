package faultrun

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ListenerPID returns the id of the process that listens on addr (a loopback
// host:port), found through /proc (Linux): the socket's inode in /proc/net/tcp, then the
// process that has it open. It is how a fault finds a server to pause that
// internal/testkit/redistest does not give the process of.
func ListenerPID(addr string) (int, error) {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return 0, err
	}
	inode, err := listenInode(port)
	if err != nil {
		return 0, err
	}
	want := "socket:[" + inode + "]"
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name())); err == nil && l == want {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process has the socket listening on %s (inode %s)", addr, inode)
}

// listenInode returns the inode of the TCP socket listening on port.
func listenInode(port int) (string, error) {
	hexPort := fmt.Sprintf(":%04X", port)
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" || !strings.HasSuffix(fs[1], hexPort) {
				continue
			}
			f.Close()
			return fs[9], nil
		}
		f.Close()
	}
	return "", fmt.Errorf("nothing listens on port %d", port)
}
