package load

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ServerProcess is the real sidecar-webhook binary running `serve` as a
// child process, so its memory is its own.
type ServerProcess struct {
	Cmd         *exec.Cmd
	Port        int
	HealthAddr  string
	MetricsAddr string
	PprofAddr   string
	Started     time.Time
	// Ready is how long after the start /readyz first answered 200: the
	// webhook listening and every informer cache synced.
	Ready   time.Duration
	logFile *os.File
	exited  chan struct{}
}

// ServerOptions configures StartServer.
type ServerOptions struct {
	Binary     string
	Kubeconfig string
	CertDir    string
	LogPath    string
	// Extra are more `serve` flags.
	Extra []string
	// Env is added to the inherited environment (KEY=VALUE).
	Env []string
}

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartServer starts `sidecar-webhook serve` with the benchmark's flags:
// no leader election, no pod reconciler and no audit (admission only), the
// floor handler on.
func StartServer(opts ServerOptions) (*ServerProcess, error) {
	var ports [4]int
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	s := &ServerProcess{
		Port:        ports[0],
		HealthAddr:  "127.0.0.1:" + strconv.Itoa(ports[1]),
		MetricsAddr: "127.0.0.1:" + strconv.Itoa(ports[2]),
		PprofAddr:   "127.0.0.1:" + strconv.Itoa(ports[3]),
	}
	args := append([]string{"serve",
		"--kubeconfig", opts.Kubeconfig,
		"--cert-dir", opts.CertDir,
		"--port", strconv.Itoa(s.Port),
		"--health-probe-bind-address", s.HealthAddr,
		"--metrics-bind-address", s.MetricsAddr,
		"--pprof-bind-address", s.PprofAddr,
		"--leader-elect=false",
		"--reconcile-pods=false",
		"--audit-interval=0",
		"--bench-floor",
	}, opts.Extra...)
	logFile, err := os.Create(opts.LogPath)
	if err != nil {
		return nil, err
	}
	s.logFile = logFile
	s.Cmd = exec.Command(opts.Binary, args...)
	s.Cmd.Stdout, s.Cmd.Stderr = logFile, logFile
	s.Cmd.Env = append(os.Environ(), opts.Env...)
	// Dies with the benchmark, whatever happens to it.
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.Started = time.Now()
	if err := s.Cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.Cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// WaitReady polls /readyz until it answers 200 and records Ready.
func (s *ServerProcess) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get("http://" + s.HealthAddr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.Ready = time.Since(s.Started)
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("the server exited before it was ready; see %s", s.logFile.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server was not ready within %s; see %s", timeout, s.logFile.Name())
		}
	}
}

// ProcessMemory is the server process's memory.
type ProcessMemory struct {
	// RSS and PeakRSS are VmRSS and VmHWM from /proc/PID/status.
	RSS     int64 `json:"rssBytes"`
	PeakRSS int64 `json:"peakRssBytes"`
	// HeapInuse and HeapAlloc are the Go runtime's, from /metrics
	// (go_memstats_heap_inuse_bytes, go_memstats_heap_alloc_bytes).
	HeapInuse int64 `json:"heapInuseBytes"`
	HeapAlloc int64 `json:"heapAllocBytes"`
}

// Memory reads the process's memory now.
func (s *ServerProcess) Memory() (ProcessMemory, error) {
	var m ProcessMemory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	if err != nil {
		return m, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.RSS = kb * 1024
		case "VmHWM:":
			m.PeakRSS = kb * 1024
		}
	}
	resp, err := http.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc = bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for name, into := range map[string]*int64{"go_memstats_heap_inuse_bytes": &m.HeapInuse, "go_memstats_heap_alloc_bytes": &m.HeapAlloc} {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				*into = int64(f)
			}
		}
	}
	return m, sc.Err()
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s).
func (s *ServerProcess) Stop() error {
	defer s.logFile.Close()
	if s.Cmd.Process == nil {
		return nil
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.Cmd.Process.Kill()
		<-s.exited
	}
	return nil
}

// Profile saves a CPU profile of the server taken over d.
func (s *ServerProcess) Profile(path string, d time.Duration) error {
	return s.fetchProfile(path, fmt.Sprintf("profile?seconds=%d", max(int(d.Seconds()), 1)), d)
}

// HeapProfile saves the server's heap profile, taken after a GC.
func (s *ServerProcess) HeapProfile(path string) error {
	return s.fetchProfile(path, "heap?gc=1", 0)
}

// LiveHeap forces a garbage collection in the server (the heap profile
// endpoint with gc=1 runs one) and returns the heap allocated right after
// it: the live heap.
func (s *ServerProcess) LiveHeap() (int64, error) {
	if err := s.fetchProfile(os.DevNull, "heap?gc=1", 0); err != nil {
		return 0, err
	}
	m, err := s.Memory()
	return m.HeapAlloc, err
}

func (s *ServerProcess) fetchProfile(path, query string, d time.Duration) error {
	c := &http.Client{Timeout: d + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/%s", s.PprofAddr, query))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d from /debug/pprof/%s", resp.StatusCode, query)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
