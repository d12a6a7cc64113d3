// Command loadbench is the HTTPS load benchmark of the real sidecar-webhook
// server. For each state (small: 1k pods, 100 Sidecars; large: 100k pods,
// 10k Sidecars in 1k namespaces) it starts a local control plane (etcd and
// kube-apiserver from bin/), loads the synthetic state, starts
// `sidecar-webhook serve --bench-floor` as a child process against it, and
// measures, for each scenario and concurrency, the floor (/bench/floor:
// decode the review, answer allowed) and the real handler back to back,
// over HTTP/2 with a kept-alive connection, as the API server calls
// webhooks. The webhook is not registered with the API server: requests go
// straight to it, and loading the state is not slowed by it. The server
// runs with --reconcile-pods=false and --audit-interval=0: admission only.
//
//	go run ./test/load/cmd/loadbench --state both --duration 10s --concurrency 1,8,64 --out results.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/dev/devcerts"
	"github.com/sidecar-webhook/sidecar-webhook/dev/localcluster"
	"github.com/sidecar-webhook/sidecar-webhook/test/load"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

type options struct {
	states      []load.State
	duration    time.Duration
	warmup      time.Duration
	concurrency []int
	scenarios   map[string]bool
	out         string
	markdown    string
	summary     string
	serverBin   string
	assets      string
	stateDir    string
	workers     int
	profileDir  string
	rounds      int
	serverEnv   []string
	serverArgs  []string
}

// Run is one measurement: the floor and the scenario back to back.
type Run struct {
	State       string      `json:"state"`
	Scenario    string      `json:"scenario"`
	Concurrency int         `json:"concurrency"`
	Floor       load.Result `json:"floor"`
	Result      load.Result `json:"result"`
}

// StateReport is everything measured for one state.
type StateReport struct {
	State        load.State         `json:"state"`
	ControlPlane time.Duration      `json:"controlPlaneStartNs"`
	Load         load.LoadStats     `json:"load"`
	Prime        time.Duration      `json:"apiServerPrimeNs"`
	CacheSync    time.Duration      `json:"cacheSyncNs"`
	MemoryIdle   load.ProcessMemory `json:"memoryAfterSync"`
	// LiveHeap is the Go heap right after a forced collection once the
	// caches have synced: what the cache really keeps, which the heap in
	// use (garbage included, up to GOMEMLIMIT) does not show.
	LiveHeap    int64              `json:"liveHeapAfterSync"`
	MemoryAfter load.ProcessMemory `json:"memoryAfterLoad"`
	Runs        []Run              `json:"runs"`
	// ConfirmRead is the direct List of a namespace's Sidecars from the
	// API server alone (what the validator's confirming read costs).
	ConfirmRead    []load.Result `json:"confirmRead,omitempty"`
	ServerEnv      []string      `json:"serverEnv,omitempty"`
	ServerArgs     []string      `json:"serverArgs,omitempty"`
	ServerLog      string        `json:"serverLog,omitempty"`
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

// Target is one of the targets, checked.
type Target struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func main() {
	var o options
	var stateFlag, concFlag, scenarioFlag string
	flag.StringVar(&stateFlag, "state", "small", "small, large or both")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measurement (floor and scenario each, in --rounds alternating turns)")
	flag.IntVar(&o.rounds, "rounds", 5, "turns the floor and the scenario take in alternation within each measurement")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per scenario before its first measurement")
	flag.StringVar(&concFlag, "concurrency", "1,8,64", "comma-separated concurrencies")
	flag.StringVar(&scenarioFlag, "scenarios", "sidecar-admitted,sidecar-admitted-unconfirmed,sidecar-denied,pod-annotated,confirm-read", "comma-separated scenarios (sidecar-admitted-unconfirmed: the same requests to the validator without the confirming read; confirm-read: the validator's direct List from the API server alone, no webhook)")
	flag.StringVar(&o.out, "out", "", "write the full results as JSON here")
	flag.StringVar(&o.markdown, "markdown", "", "write the results tables as Markdown here")
	flag.StringVar(&o.summary, "summary", "", "write a short Markdown summary (concurrency 8, memory, cache sync) here")
	flag.StringVar(&o.serverBin, "server-bin", "bin/sidecar-webhook", "the sidecar-webhook binary (built with --bench-floor)")
	flag.StringVar(&o.assets, "assets", "", "directory with etcd and kube-apiserver (default: ./bin or $KUBEBUILDER_ASSETS)")
	flag.StringVar(&o.stateDir, "state-dir", "", "keep each control plane's data here (<dir>/<state>) and reuse a loaded state next time; default: a temporary directory")
	flag.IntVar(&o.workers, "load-workers", 96, "parallel clients loading the state")
	flag.Func("server-env", "KEY=VALUE added to the server's environment (repeatable), e.g. GOMEMLIMIT=180MiB", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		o.serverEnv = append(o.serverEnv, s)
		return nil
	})
	flag.Func("server-arg", "a flag added to the server's command line (repeatable), e.g. --leader-elect=true to measure the Sidecar decision leader's path", func(s string) error {
		o.serverArgs = append(o.serverArgs, s)
		return nil
	})
	flag.StringVar(&o.profileDir, "profile-dir", "", "save the server's heap profile after the cache sync and a CPU profile of each measured run here")
	flag.Parse()
	switch stateFlag {
	case "small":
		o.states = []load.State{load.Small}
	case "large":
		o.states = []load.State{load.Large}
	case "both":
		o.states = []load.State{load.Small, load.Large}
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
	bin, err := filepath.Abs(o.serverBin)
	if err != nil {
		fatalf("%v", err)
	}
	o.serverBin = bin

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
	if o.markdown != "" {
		f, err := os.Create(o.markdown)
		if err != nil {
			fatalf("%v", err)
		}
		writeMarkdown(f, report)
		f.Close()
	}
	if o.summary != "" {
		f, err := os.Create(o.summary)
		if err != nil {
			fatalf("%v", err)
		}
		writeSummary(f, report)
		f.Close()
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadbench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
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

func runState(ctx context.Context, o options, st load.State) (StateReport, error) {
	sr := StateReport{State: st, LoadAvgAtStart: loadAvg(), ServerEnv: o.serverEnv, ServerArgs: o.serverArgs}
	istioCRDs, err := crds.IstioCRDs()
	if err != nil {
		return sr, err
	}
	stateDir := ""
	if o.stateDir != "" {
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
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		AssetsDir: o.assets, StateDir: stateDir, KeepData: stateDir != "", CRDPaths: []string{istioCRDs},
	})
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

	bundle, err := devcerts.Generate([]string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		return sr, err
	}
	certDir := filepath.Join(workDir, "certs")
	if err := bundle.WriteDir(certDir); err != nil {
		return sr, err
	}
	sr.ServerLog = filepath.Join(workDir, "server.log")
	srv, err := load.StartServer(load.ServerOptions{
		Binary: o.serverBin, Kubeconfig: cluster.KubeconfigPath, CertDir: certDir, LogPath: sr.ServerLog, Env: o.serverEnv, Extra: o.serverArgs,
	})
	if err != nil {
		return sr, err
	}
	defer srv.Stop()
	if err := srv.WaitReady(ctx, 5*time.Minute); err != nil {
		tail, _ := os.ReadFile(sr.ServerLog)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return sr, fmt.Errorf("%w\n%s", err, tail)
	}
	sr.CacheSync = srv.Ready
	logf("[%s] server ready (caches synced) %s after start", st.Name, srv.Ready.Round(time.Millisecond))
	// Let the start-up garbage settle before reading memory.
	time.Sleep(3 * time.Second)
	if sr.MemoryIdle, err = srv.Memory(); err != nil {
		return sr, err
	}
	if sr.LiveHeap, err = srv.LiveHeap(); err != nil {
		return sr, err
	}
	logf("[%s] memory after sync: RSS %s, heap in use %s, live heap after a forced GC %s",
		st.Name, mib(sr.MemoryIdle.RSS), mib(sr.MemoryIdle.HeapInuse), mib(sr.LiveHeap))
	if o.profileDir != "" {
		if err := srv.HeapProfile(filepath.Join(o.profileDir, st.Name+"-heap-after-sync.pprof")); err != nil {
			logf("[%s] heap profile: %v", st.Name, err)
		}
	}

	client, err := load.NewHTTP2Client(bundle.CACert)
	if err != nil {
		return sr, err
	}
	base := "https://127.0.0.1:" + strconv.Itoa(srv.Port)
	scenarios := []*load.Scenario{
		load.AdmittedSidecar(st, webhook.ValidateSidecarsPath),
		load.UnconfirmedAdmittedSidecar(st, webhook.UnconfirmedBenchPath),
		load.DeniedSidecar(st, webhook.ValidateSidecarsPath),
		load.AnnotatedPod(st, webhook.MutatePodsPath),
	}
	for _, sc := range scenarios {
		if !o.scenarios[sc.Name] {
			continue
		}
		real := sc.Target(client, base, sc.Path, false)
		floor := sc.Target(client, base, webhook.FloorPath, true)
		// One request each first, so that a broken setup fails loudly.
		if err := real.Do(ctx, 0); err != nil {
			return sr, fmt.Errorf("%s: first request: %w", sc.Name, err)
		}
		if err := floor.Do(ctx, 1); err != nil {
			return sr, fmt.Errorf("%s: first floor request: %w", sc.Name, err)
		}
		if o.warmup > 0 {
			load.Run(ctx, floor, 8, o.warmup/2)
			load.Run(ctx, real, 8, o.warmup/2)
		}
		for _, c := range o.concurrency {
			run := Run{State: st.Name, Scenario: sc.Name, Concurrency: c}
			profiled := make(chan struct{})
			if o.profileDir != "" {
				go func() {
					defer close(profiled)
					name := fmt.Sprintf("%s-%s-c%d.pprof", st.Name, sc.Name, c)
					if err := srv.Profile(filepath.Join(o.profileDir, name), 2*o.duration-time.Second); err != nil {
						logf("[%s] profile %s: %v", st.Name, name, err)
					}
				}()
			} else {
				close(profiled)
			}
			run.Floor, run.Result = load.RunInterleaved(ctx, floor, real, c, o.duration, o.rounds)
			<-profiled
			if err := ctx.Err(); err != nil {
				return sr, err
			}
			logf("[%s] %-16s floor    %s", st.Name, sc.Name, run.Floor)
			logf("[%s] %-16s scenario %s", st.Name, sc.Name, run.Result)
			if run.Result.FirstError != "" {
				logf("[%s]   first error: %s", st.Name, run.Result.FirstError)
			}
			if run.Floor.FirstError != "" {
				logf("[%s]   first floor error: %s", st.Name, run.Floor.FirstError)
			}
			sr.Runs = append(sr.Runs, run)
		}
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
	if sr.MemoryAfter, err = srv.Memory(); err != nil {
		return sr, err
	}
	logf("[%s] memory after the load: RSS %s (peak %s), heap in use %s", st.Name, mib(sr.MemoryAfter.RSS), mib(sr.MemoryAfter.PeakRSS), mib(sr.MemoryAfter.HeapInuse))
	sr.LoadAvgAtEnd = loadAvg()
	if fi, err := os.Stat(sr.ServerLog); err == nil {
		logf("[%s] server log: %d bytes (removed)", st.Name, fi.Size())
	}
	sr.ServerLog = ""
	return sr, nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func printReport(w io.Writer, r Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "state\tscenario\tc\trps\tp50 ms\tp99 ms\tp99.9 ms\terrors\tfloor rps\tfloor p50\tfloor p99\tfloor p99.9\trps/floor\tp50/floor\tp99/floor\tp99.9/floor\t")
	for _, s := range r.States {
		for _, run := range s.Runs {
			f, x := run.Floor, run.Result
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				s.State.Name, run.Scenario, run.Concurrency, x.RPS, ms(x.P50), ms(x.P99), ms(x.P999), x.Errors+f.Errors,
				f.RPS, ms(f.P50), ms(f.P99), ms(f.P999),
				ratio(x.RPS, f.RPS), ratio(float64(x.P50), float64(f.P50)), ratio(float64(x.P99), float64(f.P99)), ratio(float64(x.P999), float64(f.P999)))
		}
	}
	tw.Flush()
	for _, s := range r.States {
		for _, c := range s.ConfirmRead {
			fmt.Fprintf(w, "%s: confirming read alone (direct List of one namespace's Sidecars from the API server): %s\n", s.State.Name, c)
		}
	}
	fmt.Fprintln(w)
	for _, s := range r.States {
		if len(s.ServerEnv) > 0 {
			fmt.Fprintf(w, "%s: server environment %s\n", s.State.Name, strings.Join(s.ServerEnv, " "))
		}
		fmt.Fprintf(w, "%s: %d pods, %d Sidecars, %d namespaces; control plane start %s; state load %s (%d objects, %.0f/s%s); cache sync %s; RSS after sync %s, after load %s (peak %s); Go heap in use %s / %s; load average %s → %s\n",
			s.State.Name, s.State.Pods(), s.State.Sidecars(), s.State.Namespaces, s.ControlPlane.Round(time.Millisecond),
			s.Load.Elapsed.Round(time.Second), s.Load.Objects, s.Load.PerSec, reusedNote(s.Load), s.CacheSync.Round(time.Millisecond),
			mib(s.MemoryIdle.RSS), mib(s.MemoryAfter.RSS), mib(s.MemoryAfter.PeakRSS), mib(s.MemoryIdle.HeapInuse), mib(s.MemoryAfter.HeapInuse),
			s.LoadAvgAtStart, s.LoadAvgAtEnd)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		mark := "MISSED"
		if t.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "%-6s %s: %s\n", mark, t.Name, t.Measured)
	}
}

func reusedNote(l load.LoadStats) string {
	if l.Reused {
		return ", reused from --state-dir"
	}
	return ""
}

func find(r Report, state, scenario string, c int) *Run {
	for i := range r.States {
		if r.States[i].State.Name != state {
			continue
		}
		for j := range r.States[i].Runs {
			run := &r.States[i].Runs[j]
			if run.Scenario == scenario && run.Concurrency == c {
				return run
			}
		}
	}
	return nil
}

func checkTargets(r Report) []Target {
	var out []Target
	for _, s := range r.States {
		name := s.State.Name
		if run := find(r, name, "pod-annotated", 8); run != nil {
			p := float64(run.Result.P50) / float64(run.Floor.P50)
			out = append(out, Target{Name: name + ": Pod CREATE p50 within 1.3x of the floor at c=8", Measured: fmt.Sprintf("%.2fx (%s vs %s ms)", p, ms(run.Result.P50), ms(run.Floor.P50)), Met: p <= 1.3})
			t := run.Result.RPS / run.Floor.RPS
			out = append(out, Target{Name: name + ": Pod CREATE throughput at least 75% of the floor at c=8", Measured: fmt.Sprintf("%.0f%% (%.0f vs %.0f rps)", 100*t, run.Result.RPS, run.Floor.RPS), Met: t >= 0.75})
		}
		if run := find(r, name, "sidecar-admitted", 8); run != nil && name == load.Large.Name {
			out = append(out, Target{Name: name + ": Sidecar CREATE (admitted, confirmed) p99 under 10 ms at c=8", Measured: ms(run.Result.P99) + " ms", Met: run.Result.P99 < 10*time.Millisecond && run.Result.Errors == 0})
		}
		if name == load.Large.Name {
			m := s.MemoryAfter.PeakRSS
			out = append(out, Target{Name: name + ": resident memory at most 200 MiB", Measured: "peak " + mib(m) + ", after sync " + mib(s.MemoryIdle.RSS), Met: m <= 200<<20})
		}
		out = append(out, Target{Name: name + ": cache sync within 30 s", Measured: s.CacheSync.Round(time.Millisecond).String(), Met: s.CacheSync <= 30*time.Second})
	}
	// Large against small, scenario by scenario: p50 and throughput.
	for _, small := range r.States {
		if small.State.Name != load.Small.Name {
			continue
		}
		for _, sr := range small.Runs {
			lr := find(r, load.Large.Name, sr.Scenario, sr.Concurrency)
			if lr == nil {
				continue
			}
			dp := float64(lr.Result.P50)/float64(sr.Result.P50) - 1
			dr := lr.Result.RPS/sr.Result.RPS - 1
			// The floor moves too on a shared machine; the ratio to the
			// floor is the steadier comparison.
			fp := (float64(lr.Result.P50)/float64(lr.Floor.P50))/(float64(sr.Result.P50)/float64(sr.Floor.P50)) - 1
			out = append(out, Target{
				Name:     fmt.Sprintf("large within 10%% of small: %s c=%d", sr.Scenario, sr.Concurrency),
				Measured: fmt.Sprintf("p50 %+.0f%%, rps %+.0f%%, p50/floor %+.0f%%", 100*dp, 100*dr, 100*fp),
				Met:      dp <= 0.10 && dr >= -0.10,
			})
		}
	}
	return out
}

func writeMarkdown(w io.Writer, r Report) {
	fmt.Fprintln(w, "| state | scenario | c | rps | p50 ms | p99 ms | p99.9 ms | floor rps | floor p50 | floor p99 | floor p99.9 | rps / floor | p50 / floor | p99 / floor | errors |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, s := range r.States {
		for _, run := range s.Runs {
			f, x := run.Floor, run.Result
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
				s.State.Name, run.Scenario, run.Concurrency, x.RPS, ms(x.P50), ms(x.P99), ms(x.P999),
				f.RPS, ms(f.P50), ms(f.P99), ms(f.P999),
				ratio(x.RPS, f.RPS), ratio(float64(x.P50), float64(f.P50)), ratio(float64(x.P99), float64(f.P99)), x.Errors+f.Errors)
		}
	}
	var confirm []string
	for _, s := range r.States {
		for _, c := range s.ConfirmRead {
			confirm = append(confirm, fmt.Sprintf("| %s | %d | %.0f | %s | %s | %s | %d |", s.State.Name, c.Concurrency, c.RPS, ms(c.P50), ms(c.P99), ms(c.P999), c.Errors))
		}
	}
	if len(confirm) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "The confirming read alone: the load program lists one namespace's Sidecars straight from the API server (no webhook, no client-side rate limit).")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| state | c | rps | p50 ms | p99 ms | p99.9 ms | errors |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
		for _, l := range confirm {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| state | pods / Sidecars / namespaces | state load | cache sync | RSS after sync | peak RSS | Go heap in use (sync / end) | live heap after GC | load average (start → end) |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|---|")
	for _, s := range r.States {
		fmt.Fprintf(w, "| %s | %d / %d / %d | %s (%d objects%s) | %s | %s | %s | %s / %s | %s | %s → %s |\n",
			s.State.Name, s.State.Pods(), s.State.Sidecars(), s.State.Namespaces,
			s.Load.Elapsed.Round(time.Second), s.Load.Objects, reusedNote(s.Load), s.CacheSync.Round(time.Millisecond),
			mib(s.MemoryIdle.RSS), mib(s.MemoryAfter.PeakRSS), mib(s.MemoryIdle.HeapInuse), mib(s.MemoryAfter.HeapInuse), mib(s.LiveHeap),
			s.LoadAvgAtStart, s.LoadAvgAtEnd)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range r.Targets {
		mark := "missed"
		if t.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, t.Measured, mark)
	}
}

// writeSummary is the README's short table: concurrency 8 (or the middle
// concurrency measured) per scenario and state, then memory and start-up.
func writeSummary(w io.Writer, r Report) {
	fmt.Fprintln(w, "| state | scenario | c | rps (floor) | p50 ms (floor) | p99 ms (floor) | p99.9 ms (floor) |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|")
	for _, s := range r.States {
		cs := map[int]bool{}
		for _, run := range s.Runs {
			cs[run.Concurrency] = true
		}
		c := 8
		if !cs[8] {
			for k := range cs {
				c = k
				break
			}
		}
		for _, run := range s.Runs {
			if run.Concurrency != c {
				continue
			}
			f, x := run.Floor, run.Result
			fmt.Fprintf(w, "| %s | %s | %d | %.0f (%.0f) | %s (%s) | %s (%s) | %s (%s) |\n",
				s.State.Name, run.Scenario, c, x.RPS, f.RPS, ms(x.P50), ms(f.P50), ms(x.P99), ms(f.P99), ms(x.P999), ms(f.P999))
		}
	}
	for _, s := range r.States {
		fmt.Fprintf(w, "\n%s state (%d pods, %d Sidecars, %d namespaces): cache sync %s, RSS %s after sync and %s at peak, Go heap in use %s.",
			s.State.Name, s.State.Pods(), s.State.Sidecars(), s.State.Namespaces, s.CacheSync.Round(time.Millisecond),
			mib(s.MemoryIdle.RSS), mib(s.MemoryAfter.PeakRSS), mib(s.MemoryIdle.HeapInuse))
	}
	fmt.Fprintln(w)
}
