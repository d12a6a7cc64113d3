//go:build controlplane

// Package e2e holds the end-to-end tests: they drive `sidecar-webhook-dev`
// (a real etcd and kube-apiserver with the webhook registered over TLS) with
// the real kubectl, the way an administrator would. Every file carries the
// controlplane build tag: `make e2e`, or `go test -tags controlplane ./test/e2e/`.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from what the cluster answers")

const (
	// validatingWebhook is the name the API server puts in front of our
	// denials: "admission webhook %q denied the request: ...".
	validatingWebhook = "validate.sidecars.sidecar-webhook.io"
	deniedByWebhook   = `admission webhook "` + validatingWebhook + `" denied the request`

	// devLeaseNamespace holds dev's Leases (leader election and the Sidecar
	// decision leader).
	devLeaseNamespace = "kube-system"

	readyPrefix  = "ready: export KUBECONFIG="
	readyTimeout = 120 * time.Second
	stopTimeout  = 30 * time.Second
	// kubectlTimeout bounds one kubectl call; the slowest (the first apply,
	// which fetches the OpenAPI schema) takes a few seconds.
	kubectlTimeout = 90 * time.Second
)

// env is the one shared `sidecar-webhook-dev` control plane, set up by
// TestMain before any test runs.
var env struct {
	root       string // repository root (holds go.mod)
	kubectl    string // bin/kubectl
	kubeconfig string // written by the dev command
	cacheDir   string // kubectl's discovery cache, private to this run
	kc         testenv.Kubectl
	tmp        string // everything of this run: dev's state dir, logs, cache
	apiPort    string // the API server's port
	dynamic    dynamic.Interface
	// stateDir is dev's --state-dir: kubeconfig, certs/ (the webhook's
	// serving certificate and its CA), logs.
	stateDir string
	// controllerManager: bin/ holds kube-controller-manager, so dev runs it
	// and Deployments create pods.
	controllerManager bool
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	// The tests mostly wait on kubectl and the API server, so more of them
	// may run at once than there are CPUs (go test's default -parallel).
	// An explicit -parallel wins.
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", strconv.Itoa(max(6, runtime.GOMAXPROCS(0))))
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	env.root = root
	binDir := filepath.Join(root, "bin")
	if missing := missingBinaries(binDir, "sidecar-webhook", "sidecar-webhook-dev", "kubectl", "kube-apiserver", "etcd"); len(missing) > 0 {
		msg := fmt.Sprintf("end-to-end tests need %s in %s; run `make build controlplane` first",
			strings.Join(missing, ", "), binDir)
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL e2e: %s (CI=true, so this is an error, not a skip)\n", msg)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP e2e: %s (with CI=true this fails instead)\n", msg)
		return 0
	}
	env.kubectl = filepath.Join(binDir, "kubectl")
	env.controllerManager = len(missingBinaries(binDir, "kube-controller-manager")) == 0

	tmp, err := os.MkdirTemp("", "sidecar-webhook-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	env.tmp = tmp
	env.cacheDir = filepath.Join(tmp, "kubectl-cache")

	dev, err := startDev(filepath.Join(binDir, "sidecar-webhook-dev"), binDir, tmp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		if dev != nil {
			fmt.Fprintf(os.Stderr, "--- last lines of %s:\n%s\n", dev.logPath, tail(dev.logPath, 40))
			_ = dev.stop()
		}
		fmt.Fprintf(os.Stderr, "e2e: kept %s for inspection\n", tmp)
		return 1
	}
	env.kubeconfig = dev.kubeconfig
	env.kc = testenv.Kubectl{Bin: env.kubectl, Kubeconfig: env.kubeconfig, CacheDir: env.cacheDir, Timeout: kubectlTimeout}
	apiPort, err := setUpClients(dev.kubeconfig)
	env.apiPort = apiPort
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		_ = dev.stop()
		return 1
	}

	// "ready:" must mean ready: the very first request a user sends after
	// it is decided by the webhook, not refused because caches still sync.
	first := exec.Command(env.kubectl, "--kubeconfig="+env.kubeconfig, "apply", "--dry-run=server", "-f", "-")
	first.Stdin = strings.NewReader("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: first-request, namespace: default}\nspec: {egress: [{hosts: [\"./*\"]}]}\n")
	if out, err := first.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL e2e: the first request after `ready:` failed: %v\n%s\n", err, out)
		_ = dev.stop()
		return 1
	}

	code := m.Run()

	stopStart := time.Now()
	if err := dev.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL e2e: stopping `sidecar-webhook-dev`: %v\n--- last lines of %s:\n%s\n",
			err, dev.logPath, tail(dev.logPath, 40))
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "e2e: sidecar-webhook-dev stopped cleanly in %s\n", time.Since(stopStart).Round(100*time.Millisecond))
	}
	if leaked := leftoverProcesses(tmp, apiPort); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL e2e: processes of the control plane are still running after `sidecar-webhook-dev` exited:\n")
		for _, p := range leaked {
			fmt.Fprintf(os.Stderr, "  pid %d: %s\n", p.pid, p.cmdline)
			// They were started for this run only; do not leave them behind.
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		code = 1
	}
	if code == 0 {
		_ = os.RemoveAll(tmp)
	} else {
		fmt.Fprintf(os.Stderr, "e2e: kept %s (dev log: %s)\n", tmp, dev.logPath)
	}
	return code
}

func missingBinaries(dir string, names ...string) []string {
	var missing []string
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	return missing
}

// devProcess is the running `sidecar-webhook-dev`.
type devProcess struct {
	cmd        *exec.Cmd
	logPath    string
	stdout     *lineWatcher
	kubeconfig string
	exited     chan struct{} // closed once Wait has returned
	waitErr    error
}

// startDev starts `sidecar-webhook-dev` with its state under tmp and waits
// for its ready line. On error the returned process, if not nil, must still
// be stopped.
func startDev(binary, assets, tmp string) (*devProcess, error) {
	logPath := filepath.Join(tmp, "dev.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	d := &devProcess{
		logPath: logPath,
		stdout:  &lineWatcher{prefix: readyPrefix, found: make(chan string, 1)},
		exited:  make(chan struct{}),
	}
	env.stateDir = filepath.Join(tmp, "state")
	// A short audit interval lets the audit test see the SidecarConflict
	// Events within seconds instead of dev's default minute. The namespace
	// override lets TestRatchet create Sidecars in warn mode, in its own
	// namespace only, as a cluster holds them from before enforcement.
	// With --leader-elect dev runs as one replica of many: it takes the
	// Sidecar decision Lease (first to campaign), and the replicas the
	// race tests start forward to it.
	d.cmd = exec.Command(binary, "--state-dir", env.stateDir, "--assets", assets, "--audit-interval=2s", "--allow-namespace-override",
		"--leader-elect", "--leader-election-namespace", devLeaseNamespace)
	d.cmd.Stdout = d.stdout
	d.cmd.Stderr = logFile
	d.cmd.SysProcAttr = devProcAttr()
	// Should a child of dev keep the stdout pipe open after dev exits, do
	// not wait for it forever; the leftover check reports such children.
	d.cmd.WaitDelay = 5 * time.Second
	if err := d.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		logFile.Close()
		close(d.exited)
	}()

	start := time.Now()
	select {
	case kubeconfig := <-d.stdout.found:
		d.kubeconfig = strings.TrimSpace(kubeconfig)
		fmt.Fprintf(os.Stderr, "e2e: sidecar-webhook-dev ready in %s (kubeconfig %s)\n",
			time.Since(start).Round(100*time.Millisecond), d.kubeconfig)
		return d, nil
	case <-d.exited:
		return d, fmt.Errorf("`sidecar-webhook-dev` exited before it was ready (%v); stdout:\n%s", d.waitErr, d.stdout.text())
	case <-time.After(readyTimeout):
		return d, fmt.Errorf("`sidecar-webhook-dev` printed no %q line within %s; stdout so far:\n%s",
			readyPrefix, readyTimeout, d.stdout.text())
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within
// stopTimeout; after that it kills the process.
func (d *devProcess) stop() error {
	select {
	case <-d.exited:
		return fmt.Errorf("it had already exited: %v", d.waitErr)
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("it did not exit within %s of SIGTERM and was killed", stopTimeout)
	}
	state := d.cmd.ProcessState
	if state == nil || !state.Success() {
		return fmt.Errorf("it exited uncleanly after SIGTERM: %v", d.waitErr)
	}
	if errors.Is(d.waitErr, exec.ErrWaitDelay) {
		fmt.Fprintf(os.Stderr, "e2e: `sidecar-webhook-dev` exited 0 but something kept its stdout open\n")
	}
	return nil
}

// lineWatcher is the dev process's stdout: it keeps the text and reports
// the rest of the first line starting with prefix.
type lineWatcher struct {
	prefix string
	found  chan string

	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	sent    bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok && !w.sent {
			w.sent = true
			w.found <- rest
		}
	}
	return len(p), nil
}

func (w *lineWatcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// setUpClients builds the API client the tests use next to kubectl (to see
// the API server's full answer) and returns the API server's port.
func setUpClients(kubeconfig string) (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cfg.Timeout = 30 * time.Second
	if env.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return "", err
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", fmt.Errorf("API server address %q: %w", cfg.Host, err)
	}
	return u.Port(), nil
}

type process struct {
	pid     int
	cmdline string
}

// leftoverProcesses lists processes whose command line mentions dir or
// the API server's port, waiting a moment for any that are just exiting.
func leftoverProcesses(dir, apiPort string) []process {
	var found []process
	for attempt := 0; attempt < 10; attempt++ {
		found = scanProcesses(dir, apiPort)
		if len(found) == 0 {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return found
}

func scanProcesses(dir, apiPort string) []process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil // not Linux: nothing to check with
	}
	self := os.Getpid()
	var found []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 { // gone, or a zombie
			continue
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		if strings.Contains(cmdline, dir) ||
			(apiPort != "" && strings.Contains(cmdline, "--secure-port="+apiPort)) {
			found = append(found, process{pid: pid, cmdline: cmdline})
		}
	}
	return found
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kubectl runs bin/kubectl against the shared control plane; stdin, if not
// empty, is its standard input.
func kubectl(t testing.TB, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return env.kc.Run(stdin, args...)
}

// mustKubectl is kubectl that fails the test on a non-zero exit.
func mustKubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	return env.kc.Must(t, stdin, args...)
}

// createNamespace creates a namespace with a unique name starting with
// prefix; it is deleted when the test ends. (Without kube-controller-manager
// in bin/ the local control plane runs no namespace controller, so a deleted
// namespace stays Terminating until the control plane stops; unique names
// keep that from mattering.)
func createNamespace(t testing.TB, prefix string) string {
	t.Helper()
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	if len(prefix) > 50 {
		prefix = prefix[:50]
	}
	name := strings.TrimSuffix(strings.ToLower(prefix), "-") + "-" + hex.EncodeToString(suffix)
	mustKubectl(t, "", "create", "namespace", name)
	t.Cleanup(func() {
		if _, stderr, err := kubectl(t, "", "delete", "namespace", name, "--wait=false", "--ignore-not-found"); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", name, err, stderr)
		}
	})
	return name
}

// ensureNamespace creates a namespace with a fixed name unless it exists.
// It is left in place: a fixed name must stay usable by the next test run
// against the same control plane (-count=2), and a deleted namespace would
// stay Terminating.
func ensureNamespace(t testing.TB, name string) {
	t.Helper()
	_, stderr, err := kubectl(t, "", "create", "namespace", name)
	if err != nil && !strings.Contains(stderr, "AlreadyExists") {
		t.Fatalf("kubectl create namespace %s: %v: %s", name, err, stderr)
	}
}

// sidecarManifest renders a Sidecar; spec is the YAML under "spec:",
// indented by two spaces.
func sidecarManifest(apiVersion, namespace, name, spec string) string {
	return fmt.Sprintf("apiVersion: %s\nkind: Sidecar\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s\n",
		apiVersion, name, namespace, strings.Trim(spec, "\n"))
}

// apiCreate sends manifest (one Sidecar) to the API server with the Go
// client, to see the answer kubectl condenses: the full Status message
// (which names the webhook that denied) with its code and reason. It
// returns nil if the object was created.
func apiCreate(t testing.TB, manifest string, dryRun bool) *metav1.Status {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatalf("parsing manifest: %v\n%s", err, manifest)
	}
	u := &unstructured.Unstructured{Object: obj}
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	if err != nil || u.GetKind() != "Sidecar" {
		t.Fatalf("manifest is not a Sidecar (apiVersion %q, kind %q)", u.GetAPIVersion(), u.GetKind())
	}
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = env.dynamic.Resource(gv.WithResource("sidecars")).Namespace(u.GetNamespace()).Create(ctx, u, opts)
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		t.Fatalf("creating Sidecar %s/%s: not an API error: %v", u.GetNamespace(), u.GetName(), err)
	}
	s := status.Status()
	return &s
}

// parseSpec returns the spec of a Sidecar printed by `kubectl get -o yaml`.
func parseSpec(t testing.TB, yamlText string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(yamlText), &obj); err != nil {
		t.Fatalf("parsing kubectl output: %v\n%s", err, yamlText)
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		t.Fatalf("no spec in:\n%s", yamlText)
	}
	return spec
}

// listener returns spec.<direction>[i] as a map.
func listener(t testing.TB, spec map[string]any, direction string, i int) map[string]any {
	t.Helper()
	list, _ := spec[direction].([]any)
	if i >= len(list) {
		t.Fatalf("spec.%s has %d listeners, want at least %d", direction, len(list), i+1)
	}
	l, ok := list[i].(map[string]any)
	if !ok {
		t.Fatalf("spec.%s[%d] is %T, not an object", direction, i, list[i])
	}
	return l
}

// TestLeftoverCheckSeesControlPlane keeps the check TestMain makes after
// stopping dev from passing vacuously: while dev runs, the same scan must
// find dev, etcd and kube-apiserver.
func TestLeftoverCheckSeesControlPlane(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc to scan")
	}
	found := scanProcesses(env.tmp, env.apiPort)
	var cmdlines []string
	for _, p := range found {
		cmdlines = append(cmdlines, p.cmdline)
	}
	all := strings.Join(cmdlines, "\n")
	for _, want := range []string{"/sidecar-webhook-dev ", "/etcd ", "/kube-apiserver "} {
		if !strings.Contains(all, want) {
			t.Errorf("the scan for %s and port %s finds no %q process; it found:\n%s", env.tmp, env.apiPort, want, all)
		}
	}
}

// scanLines splits text into trimmed, non-empty lines.
func scanLines(text string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}
