package linearize

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/internal/testkit/testproc"
)

// aofRedis is a redis-server of one test's own that keeps its data across a crash: an
// append-only file, written and fsynced before the replies of the writes it holds
// (appendfsync always), in a directory that outlives the process. Kill crashes it
// (SIGKILL); Start starts it again on the same port, from its file.
type aofRedis struct {
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startAOFRedis(t *testing.T) *aofRedis {
	t.Helper()
	port, err := testproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &aofRedis{dir: t.TempDir(), port: port}
	r.Start(t)
	t.Cleanup(r.Kill)
	return r
}

// Addr returns the server's host:port.
func (r *aofRedis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Start starts the server and waits until it has loaded its file and answers PING.
func (r *aofRedis) Start(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for range 20 { // the port may linger for a moment after the old server's exit
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("redis-server with an append-only file on port %d: %v", r.port, err)
}

func (r *aofRedis) start() error {
	cmd := exec.Command(redistest.Binary(),
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--dir", r.dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(r.dir, "redis.log"),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ping(r.Addr()) == nil {
			r.cmd, r.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited at start: %s", r.logTail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("does not answer PING after 30s: %s", r.logTail())
		}
	}
}

// Kill crashes the server (SIGKILL) and waits for its exit. Killing a killed server does
// nothing.
func (r *aofRedis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // a paused server dies too
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

func (r *aofRedis) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	return testproc.Tail(b)
}

// ping sends PING in the inline protocol and waits for +PONG (a server loading its file
// answers -LOADING).
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}
