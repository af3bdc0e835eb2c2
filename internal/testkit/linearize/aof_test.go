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

	mu sync.Mutex
	p  *testproc.Proc // nil while killed
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
	p, err := testproc.Start(cmd)
	if err != nil {
		return err
	}
	if err := p.WaitReady(func() error { return ping(r.Addr()) }, 10*time.Millisecond, 30*time.Second, "does not answer PING after 30s"); err != nil {
		_ = p.Cmd.Process.Kill()
		<-p.Done
		return fmt.Errorf("%v: %s", err, r.logTail())
	}
	r.p = p
	return nil
}

// Kill crashes the server (SIGKILL) and waits for its exit. Killing a killed server does
// nothing.
func (r *aofRedis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return
	}
	_ = r.p.Cmd.Process.Signal(syscall.SIGCONT) // a paused server dies too
	_ = r.p.Cmd.Process.Kill()
	<-r.p.Done
	r.p = nil
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
