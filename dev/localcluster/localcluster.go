// Package localcluster runs a real, local Kubernetes control plane (etcd and
// kube-apiserver, no nodes; optionally kube-controller-manager) through
// controller-runtime's envtest. It backs the development command
// (cmd/sidecar-webhook-dev) and the tests that need an API server.
//
// The API server keeps its default admission chain (only the ServiceAccount
// plugin is disabled, as envtest does), so MutatingAdmissionWebhook and
// ValidatingAdmissionWebhook are active and it calls webhooks registered with
// url: https://127.0.0.1:PORT/... directly.
package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// startTimeout bounds each of etcd's and kube-apiserver's start (two
	// shared cores under parallel builds can be slow).
	startTimeout = 90 * time.Second
	stopTimeout  = 20 * time.Second
	// crdTimeout bounds waiting for installed CRDs to be served.
	crdTimeout = 60 * time.Second
)

// Options configures Start.
type Options struct {
	// AssetsDir holds etcd (or "server"), kube-apiserver and kubectl.
	// Default: DefaultAssetsDir() ($KUBEBUILDER_ASSETS, else <repo>/bin).
	// An explicit AssetsDir wins over KUBEBUILDER_ASSETS.
	AssetsDir string
	// StateDir receives kubeconfig, the API server's certificates (pki/),
	// etcd's data (etcd/) and the processes' logs (*.log). Created if
	// missing. Empty means a temporary directory removed by Stop.
	StateDir string
	// CRDPaths are CRD YAML files (multi-document files: only the
	// CustomResourceDefinition documents are used) or directories of them.
	// A missing path is an error.
	CRDPaths []string
	// KeepData keeps etcd's data from a previous run in StateDir; by
	// default each Start begins with an empty etcd.
	KeepData bool
	// Logger receives progress messages; optional.
	Logger logr.Logger
	// ControllerManager also starts kube-controller-manager from the assets
	// directory once the API server is up, running the workload, namespace
	// and garbage-collector controllers (ControllerManagerControllers), so a
	// Deployment really creates pods (which stay Pending: there are no
	// nodes). Its log is StateDir/kube-controller-manager.log. A missing
	// binary is an error; see HasControllerManager.
	ControllerManager bool
}

// Cluster is a running local control plane.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// KubeconfigPath is StateDir/kubeconfig for the same admin user, usable
	// by kubectl.
	KubeconfigPath string
	// Kubectl is the kubectl binary matching the API server.
	Kubectl string
	// StateDir is the directory holding the kubeconfig, certificates, data
	// and logs.
	StateDir string
	// APIServerLog and EtcdLog hold the processes' combined output.
	APIServerLog, EtcdLog string
	// ControllerManagerLog holds kube-controller-manager's output; empty
	// unless Options.ControllerManager.
	ControllerManagerLog string
	// StartupDuration is how long Start took.
	StartupDuration time.Duration

	env          *envtest.Environment
	log          logr.Logger
	reaper       *reaper
	logFiles     []*os.File
	ownsStateDir bool
	paths        assetPaths
	// controllerManager is nil unless Options.ControllerManager.
	controllerManager *controllerManager

	mu       sync.Mutex // serializes Stop and API server restarts
	stopped  bool
	stopErr  error
	done     chan struct{}
	stopOnce sync.Once
}

// Start starts etcd and kube-apiserver, installs opts.CRDPaths and waits
// until every CRD is established and served, then writes the admin
// kubeconfig. The cluster is stopped when ctx is done; callers should still
// defer Stop. On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Cluster, retErr error) {
	begin := time.Now()
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	assetsDir := opts.AssetsDir
	if assetsDir == "" {
		assetsDir = DefaultAssetsDir()
	}
	paths, err := resolveAssets(assetsDir)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	if opts.ControllerManager {
		p, ok := ControllerManagerPath(assetsDir)
		if !ok {
			return nil, fmt.Errorf("localcluster: Options.ControllerManager is set, but there is no executable %s in %s (build it with `make controlplane`)",
				binControllerManager, filepath.Dir(paths.apiServer))
		}
		paths.controllerManager = p
	}
	directCRDs, decodedCRDs, err := splitCRDPaths(opts.CRDPaths)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}

	c := &Cluster{log: log, paths: paths, Kubectl: paths.kubectl, done: make(chan struct{})}
	defer func() {
		if retErr != nil {
			_ = c.Stop()
		}
	}()
	if err := c.prepareStateDir(opts); err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	apiLog, err := c.openLog("kube-apiserver.log")
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	etcdLog, err := c.openLog("etcd.log")
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	c.APIServerLog, c.EtcdLog = apiLog.Name(), etcdLog.Name()

	tmpDir := ""
	if c.ownsStateDir {
		tmpDir = c.StateDir
	}
	if c.reaper, err = startReaper(tmpDir); err != nil {
		// Not fatal: only a crash of this process would leak processes.
		log.Info("cannot start the orphan reaper; a crash may leave etcd/kube-apiserver running", "err", err)
	}

	noExisting := false
	c.env = &envtest.Environment{
		BinaryAssetsDirectory: filepath.Dir(paths.apiServer),
		UseExistingCluster:    &noExisting,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{
				Path:    paths.apiServer,
				CertDir: filepath.Join(c.StateDir, "pki"),
				Out:     apiLog,
				Err:     apiLog,
			},
			Etcd: &envtest.Etcd{
				Path:    paths.etcd,
				DataDir: filepath.Join(c.StateDir, "etcd"),
				Out:     etcdLog,
				Err:     etcdLog,
			},
			KubectlPath: paths.kubectl,
		},
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              directCRDs,
			CRDs:               decodedCRDs,
			ErrorIfPathMissing: true,
			MaxTime:            crdTimeout,
		},
		// Environment.Start copies this over CRDInstallOptions.ErrorIfPathMissing.
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}

	log.Info("starting local control plane", "assets", filepath.Dir(paths.apiServer), "stateDir", c.StateDir)
	if err := c.startEnv(ctx); err != nil {
		return nil, fmt.Errorf("localcluster: starting control plane: %w%s", err, tailHint(c.APIServerLog))
	}
	if err := c.reaper.watch(childPIDs(paths.apiServer, paths.etcd)...); err != nil {
		log.Info("cannot register processes with the orphan reaper", "err", err)
	}

	admin, err := c.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}},
		&rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return nil, fmt.Errorf("localcluster: provisioning admin user: %w", err)
	}
	c.Config = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("localcluster: admin kubeconfig: %w", err)
	}
	c.KubeconfigPath = filepath.Join(c.StateDir, "kubeconfig")
	if err := writeFile0600(c.KubeconfigPath, kubeconfig); err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}

	if err := waitEstablished(ctx, c.Config, c.env.CRDs); err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	if opts.ControllerManager {
		if err := c.startControllerManager(ctx); err != nil {
			return nil, fmt.Errorf("localcluster: %w", err)
		}
	}

	go func() {
		select {
		case <-ctx.Done():
			log.Info("context done, stopping local control plane")
			_ = c.Stop()
		case <-c.done:
		}
	}()

	c.StartupDuration = time.Since(begin)
	log.Info("local control plane ready", "server", c.Config.Host, "kubeconfig", c.KubeconfigPath,
		"crds", len(c.env.CRDs), "took", c.StartupDuration.Round(time.Millisecond))
	return c, nil
}

// startEnv runs envtest's (uninterruptible) Start, giving up early, but only
// after it returns, when ctx is done.
func (c *Cluster) startEnv(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.env.Start()
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		<-errc
		return ctx.Err()
	}
}

func (c *Cluster) prepareStateDir(opts Options) error {
	if opts.StateDir == "" {
		d, err := os.MkdirTemp("", "localcluster-")
		if err != nil {
			return err
		}
		c.StateDir, c.ownsStateDir = d, true
	} else {
		d, err := filepath.Abs(opts.StateDir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		c.StateDir = d
	}
	// The CA keys live in memory only, so certificates from an earlier run
	// are useless: always start with fresh ones.
	if err := os.RemoveAll(filepath.Join(c.StateDir, "pki")); err != nil {
		return err
	}
	if !opts.KeepData {
		if err := os.RemoveAll(filepath.Join(c.StateDir, "etcd")); err != nil {
			return err
		}
	}
	for _, sub := range []string{"pki", "etcd"} {
		if err := os.MkdirAll(filepath.Join(c.StateDir, sub), 0o700); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) openLog(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(c.StateDir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	c.logFiles = append(c.logFiles, f)
	return f, nil
}

// Stop stops kube-controller-manager (if started), kube-apiserver and etcd and releases everything Start set up.
// It is idempotent and safe for concurrent use; every call returns the
// first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		var errs []error
		// The controller manager first: it would only log errors while the
		// API server goes away.
		if err := c.controllerManager.stop(); err != nil {
			errs = append(errs, err)
		}
		if c.env != nil {
			if err := c.env.Stop(); err != nil {
				errs = append(errs, err)
			}
		}
		c.reaper.stop()
		for _, f := range c.logFiles {
			_ = f.Close()
		}
		if c.ownsStateDir {
			if err := os.RemoveAll(c.StateDir); err != nil {
				errs = append(errs, err)
			}
		}
		c.stopped = true
		c.stopErr = errors.Join(errs...)
		close(c.done)
		if c.stopErr != nil {
			c.log.Error(c.stopErr, "stopping local control plane")
		} else {
			c.log.Info("local control plane stopped")
		}
	})
	return c.stopErr
}

// Done is closed once the cluster has been stopped.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// StopAPIServer stops only kube-apiserver (etcd keeps running), e.g. to
// test behaviour while the API server is unavailable.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("localcluster: cluster is stopped")
	}
	return c.env.ControlPlane.APIServer.Stop()
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same address, with the same certificates, so Config and the kubeconfig
// remain valid. It returns once the API server is healthy.
func (c *Cluster) StartAPIServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("localcluster: cluster is stopped")
	}
	if err := c.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("localcluster: restarting kube-apiserver: %w%s", err, tailHint(c.APIServerLog))
	}
	_ = c.reaper.watch(childPIDs(c.paths.apiServer)...)
	return nil
}

// RunKubectl runs kubectl --kubeconfig=KubeconfigPath args... with stdin
// (may be nil) and returns its output. A non-zero exit is an error that
// includes stderr.
func (c *Cluster) RunKubectl(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, c.Kubectl, append([]string{"--kubeconfig=" + c.KubeconfigPath}, args...)...)
	cmd.Stdin = stdin
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	stdout, stderr = outBuf.String(), errBuf.String()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return stdout, stderr, err
}

// waitEstablished waits until every CRD reports Established=True (envtest
// only waits for discovery).
func waitEstablished(ctx context.Context, cfg *rest.Config, crds []*apiextensionsv1.CustomResourceDefinition) error {
	cs, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	pending := map[string]bool{}
	for _, crd := range crds {
		pending[crd.Name] = true
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, crdTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // transient; retry until the timeout
		}
		for _, crd := range list.Items {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					delete(pending, crd.Name)
				}
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		names := make([]string, 0, len(pending))
		for n := range pending {
			names = append(names, n)
		}
		return fmt.Errorf("CRDs not established: %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}

func writeFile0600(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // in case tmp pre-existed
		return err
	}
	return os.Rename(tmp, p)
}

// tailHint returns the last lines of a log file, for error messages.
func tailHint(logPath string) string {
	if logPath == "" {
		return ""
	}
	b, err := os.ReadFile(logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", logPath, strings.Join(lines, "\n"))
}
