package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// binControllerManager is the optional kube-controller-manager binary.
const binControllerManager = "kube-controller-manager"

// ControllerManagerControllers are the controllers the local
// kube-controller-manager runs: the workload controllers (so a Deployment
// really gets its ReplicaSet and pods), the namespace controller (so a
// deleted namespace goes away) and the garbage collector (so deleting a
// Deployment deletes its pods). The service account token controller is left
// out: the local control plane has no service account signing key.
var ControllerManagerControllers = []string{
	"deployment-controller", "replicaset-controller", "statefulset-controller",
	"daemonset-controller", "job-controller", "cronjob-controller",
	"namespace-controller", "garbage-collector-controller",
}

// controllerManagerReadyTimeout bounds waiting for its /healthz.
const controllerManagerReadyTimeout = 60 * time.Second

// ControllerManagerPath returns dir's kube-controller-manager ("" means
// DefaultAssetsDir()) and whether it is an executable file.
func ControllerManagerPath(dir string) (string, bool) {
	if dir == "" {
		dir = DefaultAssetsDir()
	}
	if dir == "" {
		return "", false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	p := filepath.Join(abs, binControllerManager)
	return p, isExecutable(p)
}

// HasControllerManager reports whether dir ("" means DefaultAssetsDir())
// holds an executable kube-controller-manager, so callers can turn
// Options.ControllerManager on only when it can work.
func HasControllerManager(dir string) bool {
	_, ok := ControllerManagerPath(dir)
	return ok
}

// controllerManager is the running kube-controller-manager.
type controllerManager struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once Wait has returned
	waitErr error
}

// startControllerManager starts kube-controller-manager against the API
// server with the admin kubeconfig and waits for its /healthz.
func (c *Cluster) startControllerManager(ctx context.Context) error {
	logFile, err := c.openLog("kube-controller-manager.log")
	if err != nil {
		return err
	}
	c.ControllerManagerLog = logFile.Name()
	port, err := freeLocalPort()
	if err != nil {
		return err
	}
	certDir := filepath.Join(c.StateDir, "kube-controller-manager")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	args := []string{
		// No --authentication-kubeconfig or --authorization-kubeconfig: only
		// /healthz (always allowed) is used, and delegated authentication
		// would log errors about the request-header CA the local API server
		// does not have.
		"--kubeconfig=" + c.KubeconfigPath,
		"--controllers=" + strings.Join(ControllerManagerControllers, ","),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
	}
	cmd := exec.Command(c.paths.controllerManager, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, as envtest does for etcd and kube-apiserver: a
	// terminal's Ctrl-C must reach the caller, which stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", c.paths.controllerManager, err)
	}
	cm := &controllerManager{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cm.waitErr = cmd.Wait()
		close(cm.exited)
	}()
	c.controllerManager = cm
	if err := c.reaper.watch(cmd.Process.Pid); err != nil {
		c.log.Info("cannot register kube-controller-manager with the orphan reaper", "err", err)
	}

	// /healthz is always allowed, and answers once the controllers have
	// been started.
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // its self-signed serving certificate on loopback
	}
	healthz := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, controllerManagerReadyTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-cm.exited:
			return false, fmt.Errorf("kube-controller-manager exited during start: %v%s", cm.waitErr, tailHint(c.ControllerManagerLog))
		default:
		}
		resp, err := client.Get(healthz)
		if err != nil {
			return false, nil // not serving yet
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if wait.Interrupted(err) {
		return fmt.Errorf("kube-controller-manager not healthy on %s within %s%s", healthz, controllerManagerReadyTimeout, tailHint(c.ControllerManagerLog))
	}
	return err
}

// stop sends SIGTERM and waits up to stopTimeout, then kills it.
func (cm *controllerManager) stop() error {
	if cm == nil {
		return nil
	}
	select {
	case <-cm.exited:
		return nil // already gone (reported by the caller's log)
	default:
	}
	_ = cm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cm.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = cm.cmd.Process.Kill()
		<-cm.exited
		return errors.New("kube-controller-manager did not exit within " + stopTimeout.String() + " of SIGTERM and was killed")
	}
}

// ControllerManagerRunning reports whether the cluster runs a
// kube-controller-manager that has not exited.
func (c *Cluster) ControllerManagerRunning() bool {
	if c.controllerManager == nil {
		return false
	}
	select {
	case <-c.controllerManager.exited:
		return false
	default:
		return true
	}
}

func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
