package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ServerProcess is a server under test running as a child process, so its
// CPU and memory are its own: sidecar-webhook serve (StartServe), or a
// reference server (StartReference: the floor, Istio's validation webhook,
// the relay).
type ServerProcess struct {
	Name string
	Cmd  *exec.Cmd
	// Port is the HTTPS port the admission reviews go to.
	Port int
	// HealthAddr, MetricsAddr and PprofAddr are set for serve only.
	HealthAddr  string
	MetricsAddr string
	PprofAddr   string
	Started     time.Time
	// Ready is how long after the start the server first answered: for
	// serve, /readyz with 200 (the webhook listening and every informer
	// cache synced); for a reference server, a TLS handshake on Port.
	Ready   time.Duration
	logFile *os.File
	exited  chan struct{}
}

// ServeOptions configures StartServe.
type ServeOptions struct {
	Name       string
	Binary     string
	Kubeconfig string
	CertDir    string
	LogPath    string
	// LeaderElect runs the replica with leader election, so that Sidecar
	// decisions go through the decision leader; LeaseNamespace holds the
	// Leases. Off, the replica decides alone with the confirming read.
	LeaderElect    bool
	LeaseNamespace string
	// Extra are more `serve` flags.
	Extra []string
	// Env is added to the inherited environment (KEY=VALUE).
	Env []string
}

// FreePort returns a TCP port nobody listens on right now, below the
// kernel's ephemeral range: a port the kernel hands out (as port 0 would)
// can be taken again by any outbound connection before the server binds it,
// and in the large state the replicas open many to the API server.
func FreePort() (int, error) {
	low, high := 20000, ephemeralLow()
	if high-low < 1000 {
		low = high - 1000
	}
	for range 200 {
		port := low + rand.IntN(high-low)
		// The servers listen on every address, as serve does.
		if l, err := net.Listen("tcp", ":"+strconv.Itoa(port)); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free TCP port found between %d and %d", low, high)
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 1024 {
		return 32768
	}
	return n
}

// freePorts returns n distinct free ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// ServeArgs are the benchmark's `serve` flags: no pod reconciler and no
// audit (admission only), leader election as asked, the decision leader
// advertised on loopback. The production binary's own command line, kept
// in one place.
func ServeArgs(opts ServeOptions, port int, health, metrics, pprof string) []string {
	args := []string{"serve",
		"--kubeconfig", opts.Kubeconfig,
		"--cert-dir", opts.CertDir,
		"--port", strconv.Itoa(port),
		"--health-probe-bind-address", health,
		"--metrics-bind-address", metrics,
		"--pprof-bind-address", pprof,
		"--leader-elect=" + strconv.FormatBool(opts.LeaderElect),
		"--reconcile-pods=false",
		"--audit-interval=0",
	}
	if opts.LeaderElect {
		args = append(args, "--leader-election-namespace", opts.LeaseNamespace, "--advertise-address", "127.0.0.1")
	}
	return append(args, opts.Extra...)
}

// StartServe starts `sidecar-webhook serve` with ServeArgs; the replica's
// name (its identity in the Leases) is opts.Name.
func StartServe(opts ServeOptions) (*ServerProcess, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	s := &ServerProcess{
		Name:        opts.Name,
		Port:        ports[0],
		HealthAddr:  "127.0.0.1:" + strconv.Itoa(ports[1]),
		MetricsAddr: "127.0.0.1:" + strconv.Itoa(ports[2]),
		PprofAddr:   "127.0.0.1:" + strconv.Itoa(ports[3]),
	}
	args := ServeArgs(opts, s.Port, s.HealthAddr, s.MetricsAddr, s.PprofAddr)
	env := append([]string{"POD_NAME=" + opts.Name}, opts.Env...)
	return s, s.start(opts.Binary, args, env, opts.LogPath)
}

// StartReference starts a reference server (the floor, Istio's validation
// webhook, the relay): binary --cert-dir certDir --port PORT, then extra.
func StartReference(name, binary, certDir, logPath string, extra ...string) (*ServerProcess, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	s := &ServerProcess{Name: name, Port: ports[0]}
	args := append([]string{"--cert-dir", certDir, "--port", strconv.Itoa(s.Port)}, extra...)
	return s, s.start(binary, args, nil, logPath)
}

func (s *ServerProcess) start(binary string, args, env []string, logPath string) error {
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	s.logFile = logFile
	s.Cmd = exec.Command(binary, args...)
	s.Cmd.Stdout, s.Cmd.Stderr = logFile, logFile
	s.Cmd.Env = append(os.Environ(), env...)
	// Dies with the benchmark, whatever happens to it.
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.Started = time.Now()
	if err := s.Cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.Cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// WaitReady waits until the server answers (see Ready) and records Ready.
func (s *ServerProcess) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		if s.answers(c) {
			s.Ready = time.Since(s.Started)
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready; see %s", s.Name, s.logFile.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within %s; see %s", s.Name, timeout, s.logFile.Name())
		}
	}
}

func (s *ServerProcess) answers(c *http.Client) bool {
	if s.HealthAddr == "" {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(s.Port),
			&tls.Config{InsecureSkipVerify: true}) // only whether it listens
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	resp, err := c.Get("http://" + s.HealthAddr + "/readyz")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Metrics returns the samples of the server's /metrics whose name is name,
// keyed by their labels as printed ("" without labels, else for example
// `{path="leader",result="allowed"}`).
func (s *ServerProcess) Metrics(name string) (map[string]float64, error) {
	resp, err := http.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		labels, value := "", rest
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels, value = rest[:end+1], rest[end+1:]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s%s: %w", s.Name, name, labels, err)
		}
		out[labels] = v
	}
	return out, sc.Err()
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
