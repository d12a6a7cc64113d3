// Command loadbench is the HTTPS load benchmark of the production
// sidecar-webhook server. For each state (small: 1k pods, 100 Sidecars;
// large: 100k pods, 10k Sidecars in 1k namespaces) it starts a local
// control plane (etcd and kube-apiserver from bin/), loads the synthetic
// state, and starts as child processes, each on its own port:
//
//   - alone: `sidecar-webhook serve` with leader election off, deciding
//     alone (an admitted Sidecar is confirmed by a direct read);
//   - leader and follower: two `serve` replicas with leader election on;
//     the follower forwards Sidecar decisions to the leader;
//   - floor: the project's admission path with nothing behind it
//     (cmd/floor);
//   - istio: Istio's own validation webhook (cmd/istio-validation);
//   - relay: the cheapest possible follower (cmd/relay): the floor's
//     admission path forwarding every review, as a follower forwards to
//     the leader, to a second floor process that does no work; started
//     for the ratings scenario only, when --relay-bin is set. Its
//     requests/s bound what any follower can reach on the machine.
//
// Then, for each scenario and concurrency, it sends the same reviews to
// each of the scenario's servers in alternating turns, over HTTP/2 with a
// kept-alive connection as the API server calls webhooks. The webhooks are
// not registered with the API server: requests go straight to them, and
// loading the state is not slowed by them. The replicas run with
// --reconcile-pods=false and --audit-interval=0: admission only.
//
//	go run ./cmd/loadbench --server-bin ../../bin/sidecar-webhook --floor-bin FLOOR --istio-bin ISTIO --relay-bin RELAY --state both
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/certs"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/hack/loadbench/load"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// The servers a review can be sent to.
const (
	targetFloor    = "floor"
	targetAlone    = "alone"
	targetLeader   = "leader"
	targetFollower = "follower"
	targetIstio    = "istio"
	targetRelay    = "relay"
)

// relayTargetName is the second floor process, the relay's target (not
// measured on its own).
const relayTargetName = "relay-target"

// Paths of the reference servers (cmd/floor, cmd/istio-validation).
const (
	floorPath = "/floor"
	istioPath = "/validate"
)

// leaseNamespace holds the replicas' Leases; decider names the Service
// name the leader's certificate is checked for after it.
const (
	leaseNamespace    = "default"
	deciderServerName = "sidecar-webhook." + leaseNamespace + ".svc"
)

// ratingsScenario is the Sidecar CREATE sent to this project and to Istio.
const ratingsScenario = "sidecar-ratings"

type options struct {
	states      []benchdata.State
	duration    time.Duration
	warmup      time.Duration
	concurrency []int
	scenarios   map[string]bool
	out         string
	markdown    string
	summary     string
	serverBin   string
	floorBin    string
	istioBin    string
	relayBin    string
	reference   string
	assets      string
	stateDir    string
	workers     int
	profileDir  string
	rounds      int
	serverEnv   []string
	serverArgs  []string
}

// Run is one measurement: a scenario at one concurrency, each of its
// servers measured in alternating turns.
type Run struct {
	State       string   `json:"state"`
	Scenario    string   `json:"scenario"`
	Concurrency int      `json:"concurrency"`
	Results     []Result `json:"results"`
}

// Result is one server's figures in a Run.
type Result struct {
	Target string      `json:"target"`
	Result load.Result `json:"result"`
}

// Get returns target's figures in the run.
func (r Run) Get(target string) (load.Result, bool) {
	for _, x := range r.Results {
		if x.Target == target {
			return x.Result, true
		}
	}
	return load.Result{}, false
}

// StateReport is everything measured for one state.
type StateReport struct {
	State        benchdata.State `json:"state"`
	ControlPlane time.Duration   `json:"controlPlaneStartNs"`
	Load         load.LoadStats  `json:"load"`
	Prime        time.Duration   `json:"apiServerPrimeNs"`
	// CacheSync is how long the replica deciding alone took to be ready.
	CacheSync  time.Duration      `json:"cacheSyncNs"`
	MemoryIdle load.ProcessMemory `json:"memoryAfterSync"`
	// LiveHeap is the Go heap right after a forced collection once the
	// caches have synced: what the cache really keeps, which the heap in
	// use (garbage included, up to GOMEMLIMIT) does not show.
	LiveHeap    int64              `json:"liveHeapAfterSync"`
	MemoryAfter load.ProcessMemory `json:"memoryAfterLoad"`
	// LeaderWarm is how long after the replicas' start the decision
	// leader was elected and warm.
	LeaderWarm time.Duration `json:"leaderWarmNs"`
	// Settle is how long the machine took to quieten after that, and
	// SettleBusy the CPU share in use when measuring began (see settle).
	Settle     time.Duration `json:"settleNs"`
	SettleBusy float64       `json:"settleBusy"`
	Runs       []Run         `json:"runs"`
	// ConfirmRead is the direct List of a namespace's Sidecars from the
	// API server alone (what the confirming read costs).
	ConfirmRead    []load.Result `json:"confirmRead,omitempty"`
	ServerEnv      []string      `json:"serverEnv,omitempty"`
	ServerArgs     []string      `json:"serverArgs,omitempty"`
	LoadAvgAtStart string        `json:"loadAvgAtStart"`
	LoadAvgAtEnd   string        `json:"loadAvgAtEnd"`
}

// Report is the whole output.
type Report struct {
	Date       time.Time     `json:"date"`
	Duration   time.Duration `json:"durationNs"`
	GoMaxProcs int           `json:"gomaxprocs"`
	States     []StateReport `json:"states"`
	Targets    []Target      `json:"targets"`
}

// Target is one of the issues' targets, checked, or (Info) a figure
// reported next to them.
type Target struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	Info     bool   `json:"info,omitempty"`
}

func main() {
	var o options
	var stateFlag, concFlag, scenarioFlag string
	flag.StringVar(&stateFlag, "state", "small", "small, large or both")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each server's share of a measurement (taken in --rounds alternating turns)")
	flag.IntVar(&o.rounds, "rounds", 5, "turns each server takes in alternation within a measurement")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per scenario before its first measurement, shared by its servers")
	flag.StringVar(&concFlag, "concurrency", "1,8,64", "comma-separated concurrencies")
	flag.StringVar(&scenarioFlag, "scenarios", "sidecar-admitted,sidecar-denied,pod-annotated,"+ratingsScenario+",confirm-read",
		"comma-separated scenarios ("+ratingsScenario+": the reference's ratings Sidecar, also sent to Istio's validation webhook; confirm-read: the confirming read's List alone, sent to the API server)")
	flag.StringVar(&o.out, "out", "", "write the full results as JSON here")
	flag.StringVar(&o.markdown, "markdown", "", "write the results tables as Markdown here")
	flag.StringVar(&o.summary, "summary", "", "write a short Markdown summary (concurrency 8, memory, cache sync) here")
	flag.StringVar(&o.serverBin, "server-bin", "bin/sidecar-webhook", "the production sidecar-webhook binary")
	flag.StringVar(&o.floorBin, "floor-bin", "", "the floor server (go build ./cmd/floor)")
	flag.StringVar(&o.istioBin, "istio-bin", "", "Istio's validation webhook (go build ./cmd/istio-validation); needed by "+ratingsScenario)
	flag.StringVar(&o.relayBin, "relay-bin", "", "the relay, the cheapest possible follower (go build ./cmd/relay); measured in "+ratingsScenario+" when set")
	flag.StringVar(&o.reference, "ratings", "validation/testdata/reference/ratings.yaml", "the reference's ratings Sidecar (YAML), for "+ratingsScenario)
	flag.StringVar(&o.assets, "assets", "", "directory with etcd and kube-apiserver (default: ./bin or $KUBEBUILDER_ASSETS)")
	flag.StringVar(&o.stateDir, "state-dir", "", "keep each control plane's data here (<dir>/<state>) and reuse a loaded state next time; default: a temporary directory")
	flag.IntVar(&o.workers, "load-workers", 96, "parallel clients loading the state")
	flag.Func("server-env", "KEY=VALUE added to every replica's environment (repeatable), e.g. GOMEMLIMIT=180MiB", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		o.serverEnv = append(o.serverEnv, s)
		return nil
	})
	flag.Func("server-arg", "a flag added to every replica's serve command line (repeatable), e.g. --enforcement=warn", func(s string) error {
		o.serverArgs = append(o.serverArgs, s)
		return nil
	})
	flag.StringVar(&o.profileDir, "profile-dir", "", "save the replicas' heap profiles after the cache sync and their CPU profiles of each measured run here")
	flag.Parse()
	switch stateFlag {
	case "small":
		o.states = []benchdata.State{benchdata.Small}
	case "large":
		o.states = []benchdata.State{benchdata.Large}
	case "both":
		o.states = []benchdata.State{benchdata.Small, benchdata.Large}
	default:
		fatalf("--state must be small, large or both")
	}
	for _, c := range strings.Split(concFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			fatalf("bad --concurrency %q", concFlag)
		}
		o.concurrency = append(o.concurrency, n)
	}
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(scenarioFlag, ",") {
		o.scenarios[strings.TrimSpace(s)] = true
	}
	for _, p := range []*string{&o.serverBin, &o.floorBin, &o.istioBin, &o.relayBin} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			fatalf("%v", err)
		}
		*p = abs
	}
	if o.floorBin == "" {
		fatalf("--floor-bin is required")
	}
	if o.scenarios[ratingsScenario] && o.istioBin == "" {
		fatalf("--istio-bin is required for %s", ratingsScenario)
	}

	// envtest logs through controller-runtime's logger; nothing to say here.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report := Report{Date: time.Now().UTC(), Duration: o.duration, GoMaxProcs: runtime.GOMAXPROCS(0)}
	for _, st := range o.states {
		sr, err := runState(ctx, o, st)
		if err != nil {
			fatalf("state %s: %v", st.Name, err)
		}
		report.States = append(report.States, sr)
	}
	report.Targets = checkTargets(report)

	printReport(os.Stdout, report)
	if o.out != "" {
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	for _, w := range []struct {
		path  string
		write func(io.Writer, Report)
	}{{o.markdown, writeMarkdown}, {o.summary, writeSummary}} {
		if w.path == "" {
			continue
		}
		f, err := os.Create(w.path)
		if err != nil {
			fatalf("%v", err)
		}
		w.write(f, report)
		if err := f.Close(); err != nil {
			fatalf("%v", err)
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadbench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// settleWindow and settleBusy: the machine counts as quiet once its CPUs
// were less than settleBusy in use over settleWindow.
const (
	settleWindow = 3 * time.Second
	settleBusy   = 0.25
)

// settle waits until the machine is quiet, at most max, and returns how
// long it waited and the CPU share in use over the last window.
func settle(ctx context.Context, max time.Duration) (time.Duration, float64) {
	start := time.Now()
	prevBusy, prevTotal, ok := cpuTimes()
	busy := 1.0
	for ok && time.Since(start) < max {
		select {
		case <-ctx.Done():
			return time.Since(start), busy
		case <-time.After(settleWindow):
		}
		b, t, okNow := cpuTimes()
		if !okNow || t <= prevTotal {
			break
		}
		busy = float64(b-prevBusy) / float64(t-prevTotal)
		prevBusy, prevTotal = b, t
		if busy < settleBusy {
			break
		}
	}
	return time.Since(start), busy
}

// cpuTimes reads the busy and total CPU time of all CPUs from /proc/stat
// (in clock ticks); ok is false where it cannot.
func cpuTimes() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal; guest time is
	// already counted in user and nice.
	for i, f := range fields[1:min(len(fields), 9)] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, true
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// servers are the processes of one state.
type servers struct {
	floor, alone, istio *load.ServerProcess
	// relay forwards to relayTarget, a second floor (ratings scenario
	// only, with --relay-bin).
	relay, relayTarget *load.ServerProcess
	// leader and follower are the two replicas with leader election on,
	// once it is known which one leads.
	leader, follower *load.ServerProcess
	all              []*load.ServerProcess
}

func (s *servers) stop() {
	for _, p := range s.all {
		_ = p.Stop()
	}
}

// url is where target answers path (this project's path; the reference
// servers answer on theirs).
func (s *servers) url(target, path string) string {
	var p *load.ServerProcess
	switch target {
	case targetFloor:
		p, path = s.floor, floorPath
	case targetIstio:
		p, path = s.istio, istioPath
	case targetRelay:
		p, path = s.relay, floorPath
	case targetAlone:
		p = s.alone
	case targetLeader:
		p = s.leader
	case targetFollower:
		p = s.follower
	}
	return "https://127.0.0.1:" + strconv.Itoa(p.Port) + path
}

// replicas are the project's servers, by target name.
func (s *servers) replicas() map[string]*load.ServerProcess {
	return map[string]*load.ServerProcess{targetAlone: s.alone, targetLeader: s.leader, targetFollower: s.follower}
}

func runState(ctx context.Context, o options, st benchdata.State) (StateReport, error) {
	sr := StateReport{State: st, LoadAvgAtStart: loadAvg(), ServerEnv: o.serverEnv, ServerArgs: o.serverArgs}
	stateDir := ""
	if o.stateDir != "" {
		var err error
		if stateDir, err = filepath.Abs(filepath.Join(o.stateDir, st.Name)); err != nil {
			return sr, err
		}
	}
	workDir, err := os.MkdirTemp("", "loadbench-"+st.Name+"-")
	if err != nil {
		return sr, err
	}
	defer os.RemoveAll(workDir)

	logf("[%s] starting the control plane", st.Name)
	t0 := time.Now()
	cluster, err := startControlPlane(ctx, o.assets, stateDir)
	if err != nil {
		return sr, err
	}
	defer cluster.Stop()
	sr.ControlPlane = time.Since(t0)

	scheme, err := informer.NewScheme()
	if err != nil {
		return sr, err
	}
	logf("[%s] loading %d namespaces, %d pods, %d Sidecars, %d Deployments, %d ReplicaSets, %d Services",
		st.Name, st.Namespaces, st.Pods(), st.Sidecars(), st.Namespaces*st.DeploymentsPerNS,
		st.Namespaces*st.DeploymentsPerNS*st.ReplicaSetsPerDeployment, st.Namespaces*st.ServicesPerNS)
	sr.Load, err = load.Load(ctx, cluster.Config, scheme, st, o.workers, func(done int64, elapsed time.Duration) {
		logf("[%s]   %d objects in %s (%.0f/s)", st.Name, done, elapsed.Round(time.Second), float64(done)/elapsed.Seconds())
	})
	if err != nil {
		return sr, err
	}
	if sr.Load.Reused {
		logf("[%s] state already loaded in %s; reused", st.Name, stateDir)
	} else {
		logf("[%s] loaded %d objects in %s (%.0f/s)", st.Name, sr.Load.Objects, sr.Load.Elapsed.Round(time.Second), sr.Load.PerSec)
	}
	if sr.Prime, err = load.Prime(ctx, cluster.Config, scheme); err != nil {
		return sr, err
	}
	logf("[%s] API server watch cache primed in %s", st.Name, sr.Prime.Round(time.Millisecond))

	certDir := filepath.Join(workDir, "certs")
	caPEM, err := writeServingCerts(certDir, []string{"127.0.0.1", deciderServerName})
	if err != nil {
		return sr, err
	}
	srv, err := startServers(ctx, o, cluster, certDir, workDir)
	defer srv.stop()
	if err != nil {
		return sr, err
	}
	sr.CacheSync = srv.alone.Ready
	logf("[%s] servers ready; the replica deciding alone synced its caches %s after start", st.Name, srv.alone.Ready.Round(time.Millisecond))
	// Let the start-up garbage settle before reading memory.
	time.Sleep(3 * time.Second)
	if sr.MemoryIdle, err = srv.alone.Memory(); err != nil {
		return sr, err
	}
	if sr.LiveHeap, err = srv.alone.LiveHeap(); err != nil {
		return sr, err
	}
	logf("[%s] memory after sync: RSS %s, heap in use %s, live heap after a forced GC %s",
		st.Name, mib(sr.MemoryIdle.RSS), mib(sr.MemoryIdle.HeapInuse), mib(sr.LiveHeap))
	started := time.Now()
	if err := srv.electLeader(ctx, 3*time.Minute); err != nil {
		return sr, err
	}
	sr.LeaderWarm = time.Since(srv.leader.Started)
	logf("[%s] %s leads Sidecar decisions and is warm (%s after its start; waited %s here)", st.Name, srv.leader.Name,
		sr.LeaderWarm.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	// Measure from a quiet machine, not from the tail of the start-up.
	// (This does not explain all of the large state's slow first scenario:
	// in one run the floor still reached two thirds of its later
	// requests/s there after the machine had settled.)
	sr.Settle, sr.SettleBusy = settle(ctx, 90*time.Second)
	logf("[%s] machine settled in %s (CPU %.0f%% busy over the last %s)", st.Name, sr.Settle.Round(time.Second), 100*sr.SettleBusy, settleWindow)
	if o.profileDir != "" {
		for name, p := range srv.replicas() {
			if err := p.HeapProfile(filepath.Join(o.profileDir, st.Name+"-"+name+"-heap-after-sync.pprof")); err != nil {
				logf("[%s] heap profile of %s: %v", st.Name, name, err)
			}
		}
	}

	client, err := load.NewHTTP2Client(caPEM)
	if err != nil {
		return sr, err
	}
	scenarios, err := scenariosFor(o, st)
	if err != nil {
		return sr, err
	}
	for _, sc := range scenarios {
		runs, err := measure(ctx, o, st, srv, client, sc)
		if err != nil {
			return sr, err
		}
		sr.Runs = append(sr.Runs, runs...)
	}
	if o.scenarios["confirm-read"] {
		lister, err := load.SidecarLister(cluster.Config, scheme, st)
		if err != nil {
			return sr, err
		}
		for _, c := range o.concurrency {
			r := load.Run(ctx, lister, c, o.duration)
			logf("[%s] %-16s API server %s", st.Name, "confirm-read", r)
			sr.ConfirmRead = append(sr.ConfirmRead, r)
		}
	}
	if sr.MemoryAfter, err = srv.alone.Memory(); err != nil {
		return sr, err
	}
	logf("[%s] memory after the load: RSS %s (peak %s), heap in use %s", st.Name, mib(sr.MemoryAfter.RSS), mib(sr.MemoryAfter.PeakRSS), mib(sr.MemoryAfter.HeapInuse))
	sr.LoadAvgAtEnd = loadAvg()
	return sr, nil
}

// startServers starts every server of a state and waits until each is
// ready. The returned servers are stopped by their stop, also on error.
func startServers(ctx context.Context, o options, cluster *controlPlane, certDir, workDir string) (*servers, error) {
	s := &servers{}
	serve := func(name string, leaderElect bool) (*load.ServerProcess, error) {
		p, err := load.StartServe(load.ServeOptions{
			Name: name, Binary: o.serverBin, Kubeconfig: cluster.KubeconfigPath, CertDir: certDir,
			LogPath: filepath.Join(workDir, name+".log"), LeaderElect: leaderElect, LeaseNamespace: leaseNamespace,
			Env: o.serverEnv, Extra: o.serverArgs,
		})
		if err == nil {
			s.all = append(s.all, p)
		}
		return p, err
	}
	reference := func(name, bin string, extra ...string) (*load.ServerProcess, error) {
		p, err := load.StartReference(name, bin, certDir, filepath.Join(workDir, name+".log"), extra...)
		if err == nil {
			s.all = append(s.all, p)
		}
		return p, err
	}
	var err error
	if s.floor, err = reference(targetFloor, o.floorBin); err != nil {
		return s, err
	}
	if o.istioBin != "" {
		if s.istio, err = reference(targetIstio, o.istioBin); err != nil {
			return s, err
		}
	}
	if relayed(o) {
		// The relay's target is a leader that does no work: a floor of
		// its own, so that the measured floor serves nothing else. The
		// relay checks its certificate as a follower checks the
		// leader's: against the CA file, for the Service's name.
		if s.relayTarget, err = reference(relayTargetName, o.floorBin); err != nil {
			return s, err
		}
		if s.relay, err = reference(targetRelay, o.relayBin,
			"--target", "https://127.0.0.1:"+strconv.Itoa(s.relayTarget.Port)+floorPath,
			"--ca-file", filepath.Join(certDir, certs.CAFile), "--server-name", deciderServerName); err != nil {
			return s, err
		}
	}
	if s.alone, err = serve(targetAlone, false); err != nil {
		return s, err
	}
	// The two replicas are named for their start order; which one leads
	// is known only once the Lease is taken.
	for _, name := range []string{"replica-a", "replica-b"} {
		if _, err := serve(name, true); err != nil {
			return s, err
		}
	}
	for _, p := range s.all {
		if err := p.WaitReady(ctx, 5*time.Minute); err != nil {
			return s, fmt.Errorf("%w\n%s", err, logTail(filepath.Join(workDir, p.Name+".log")))
		}
	}
	return s, nil
}

// relayed says whether the relay is started and measured: in the ratings
// scenario, with --relay-bin.
func relayed(o options) bool { return o.relayBin != "" && o.scenarios[ratingsScenario] }

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// electLeader waits until one of the two replicas with leader election
// leads Sidecar decisions and has finished its warm-up (it then decides
// from its cache alone), and the other knows it is a follower.
func (s *servers) electLeader(ctx context.Context, timeout time.Duration) error {
	var pair []*load.ServerProcess
	for _, p := range s.all {
		if strings.HasPrefix(p.Name, "replica-") {
			pair = append(pair, p)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		var leaders []*load.ServerProcess
		warm := true
		for _, p := range pair {
			lead, err := p.Metrics("sidecar_webhook_decision_leader")
			if err != nil {
				return err
			}
			warming, err := p.Metrics("sidecar_webhook_decision_warming_up")
			if err != nil {
				return err
			}
			if lead[""] == 1 {
				leaders = append(leaders, p)
				warm = warming[""] == 0
			}
		}
		if len(leaders) == 1 && warm {
			s.leader = leaders[0]
			for _, p := range pair {
				if p != s.leader {
					s.follower = p
				}
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no replica led Sidecar decisions, warm, within %s (leaders: %d)", timeout, len(leaders))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// scenario is a kind of review and the servers it is sent to.
type scenario struct {
	*benchdata.Scenario
	targets []string
}

func scenariosFor(o options, st benchdata.State) ([]scenario, error) {
	all := []scenario{
		{benchdata.AdmittedSidecar(st, webhook.ValidateSidecarsPath), []string{targetFloor, targetAlone, targetLeader, targetFollower}},
		{benchdata.DeniedSidecar(st, webhook.ValidateSidecarsPath), []string{targetFloor, targetAlone}},
		{benchdata.AnnotatedPod(st, webhook.MutatePodsPath), []string{targetFloor, targetAlone}},
	}
	if o.scenarios[ratingsScenario] {
		y, err := os.ReadFile(o.reference)
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.reference, err)
		}
		sc, err := benchdata.ExampleSidecar(st, ratingsScenario, j, webhook.ValidateSidecarsPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.reference, err)
		}
		targets := []string{targetFloor, targetIstio, targetAlone, targetLeader, targetFollower}
		if relayed(o) {
			targets = []string{targetFloor, targetIstio, targetRelay, targetAlone, targetLeader, targetFollower}
		}
		all = append(all, scenario{sc, targets})
	}
	var out []scenario
	for _, sc := range all {
		if o.scenarios[sc.Name] {
			out = append(out, sc)
		}
	}
	return out, nil
}

// measure runs one scenario at every concurrency.
func measure(ctx context.Context, o options, st benchdata.State, srv *servers, client *http.Client, sc scenario) ([]Run, error) {
	targets := make([]load.Target, len(sc.targets))
	for i, name := range sc.targets {
		expect := sc.Expect
		if name == targetFloor || name == targetIstio || name == targetRelay {
			// The references are held to the same HTTP checks; they
			// answer allowed (the relay, its target floor's answer).
			expect = benchdata.Expect{Allowed: true}
		}
		t := &load.AdmissionTarget{Client: client, URL: srv.url(name, sc.Path), Body: sc.Body, Expect: expect}
		// One request each first, so that a broken setup fails loudly.
		if err := t.Do(ctx, int64(i)); err != nil {
			return nil, fmt.Errorf("%s, %s: first request: %w", sc.Name, name, err)
		}
		targets[i] = t
	}
	if o.warmup > 0 {
		for _, t := range targets {
			load.Run(ctx, t, 8, o.warmup/time.Duration(len(targets)))
		}
	}
	var runs []Run
	for _, c := range o.concurrency {
		before, err := srv.decisions()
		if err != nil {
			return nil, err
		}
		stopProfiles := profile(o, st, srv, sc, c)
		results := load.RunInterleaved(ctx, targets, c, o.duration, o.rounds)
		stopProfiles()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		after, err := srv.decisions()
		if err != nil {
			return nil, err
		}
		run := Run{State: st.Name, Scenario: sc.Name, Concurrency: c}
		for i, name := range sc.targets {
			r := results[i]
			run.Results = append(run.Results, Result{Target: name, Result: r})
			logf("[%s] %-16s %-8s %s", st.Name, sc.Name, name, r)
			if r.FirstError != "" {
				logf("[%s]   first error: %s", st.Name, r.FirstError)
			}
		}
		// The leader and the follower must have measured the paths they
		// are named for: a decision taken in warm-up or by a follower on
		// its own would be a different path.
		for _, path := range []string{webhook.PathLeaderWarmup, webhook.PathFallback} {
			if n := after[path] - before[path]; n > 0 {
				return nil, fmt.Errorf("%s c=%d: %.0f Sidecar decisions took the %q path during the run", sc.Name, c, n, path)
			}
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// decisions counts the Sidecar decisions of the two replicas with leader
// election, by path.
func (s *servers) decisions() (map[string]float64, error) {
	out := map[string]float64{}
	for _, p := range []*load.ServerProcess{s.leader, s.follower} {
		m, err := p.Metrics(webhook.MetricSidecarDecisions)
		if err != nil {
			return nil, err
		}
		for labels, v := range m {
			for _, path := range []string{webhook.PathLeader, webhook.PathLeaderWarmup, webhook.PathForwarded, webhook.PathFallback, webhook.PathLocal} {
				if strings.Contains(labels, `path="`+path+`"`) {
					out[path] += v
				}
			}
		}
	}
	return out, nil
}

// profile takes a CPU profile of each of the project's replicas that the
// scenario loads over the whole measurement, when --profile-dir is set;
// the returned function waits for them.
func profile(o options, st benchdata.State, srv *servers, sc scenario, c int) func() {
	if o.profileDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	n := 0
	for _, name := range sc.targets {
		p, ours := srv.replicas()[name]
		if !ours {
			continue
		}
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			file := filepath.Join(o.profileDir, fmt.Sprintf("%s-%s-c%d-%s.pprof", st.Name, sc.Name, c, name))
			d := time.Duration(len(sc.targets))*o.duration - time.Second
			if err := p.Profile(file, d); err != nil {
				logf("[%s] profile %s: %v", st.Name, file, err)
			}
		}()
	}
	return func() {
		for range n {
			<-done
		}
	}
}
