//go:build controlplane

package faults_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/internal/decider"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// The tests here run several replicas of `serve` with leader election on,
// as the Deployment does, and play the API server: a review goes to one
// replica, and what it allows is stored at once (the webhook is not
// registered, so the store is not asked again). Conflicting namespace-wide
// Sidecars are fired at the same instant through different replicas, while
// the decision leader is killed, stopped, restarted or loses its Lease.

const (
	// webhookTimeout is the API server's timeout for the Sidecar webhook
	// (deploy/, webhook.SidecarTimeoutSeconds): an answer after it is none.
	webhookTimeout = time.Duration(webhook.SidecarTimeoutSeconds) * time.Second
	// deciderRaceNamespaces and deciderRaceRounds: each steady-state race
	// runs this many rounds over this many fresh namespaces.
	deciderRaceNamespaces = 20
	deciderRaceRounds     = 3
	// takeoverTimeout bounds how long the other replicas take to lead
	// after the leader vanished without releasing: the Lease's duration,
	// a retry period and the warm-up.
	takeoverTimeout = decider.LeaseDuration + 3*decider.RetryPeriod + decider.WarmupFloor + 10*time.Second
)

// startDeciders starts n replicas electing their decision leader in a
// fresh namespace of their own, and waits until one leads, warmed up.
func startDeciders(t *testing.T, n int) (string, []*webhookProc, *webhookProc) {
	t.Helper()
	leaseNamespace := createNamespace(t, "decider")
	procs := make([]*webhookProc, 0, n)
	for range n {
		procs = append(procs, startDecider(t, leaseNamespace))
	}
	return leaseNamespace, procs, waitSteadyLeader(t, leaseNamespace, procs, 60*time.Second)
}

func startDecider(t *testing.T, leaseNamespace string) *webhookProc {
	t.Helper()
	return startWebhook(t, "--leader-elect=true", "--leader-election-namespace="+leaseNamespace,
		"--advertise-address=127.0.0.1", "--decider-server-name=localhost",
		"--audit-interval=0", "--reconcile-pods=false")
}

// holder reads the decision Lease's holder.
func holder(leaseNamespace string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease := &coordinationv1.Lease{}
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: leaseNamespace, Name: decider.LeaseName}, lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// waitSteadyLeader waits until one of procs holds the Lease, says it leads
// and is warm, and returns it.
func waitSteadyLeader(t *testing.T, leaseNamespace string, procs []*webhookProc, timeout time.Duration) *webhookProc {
	t.Helper()
	var leader *webhookProc
	took := testenv.Eventually(t, timeout, "a warm decision leader", func(context.Context) error {
		id, err := holder(leaseNamespace)
		if err != nil {
			return err
		}
		address, err := decider.AddressOf(id)
		if err != nil {
			return err
		}
		for _, p := range procs {
			if p.addr != address || !p.alive() {
				continue
			}
			m, err := p.metrics()
			if err != nil {
				return err
			}
			if m[decider.MetricLeader] != 1 || m[decider.MetricWarmingUp] != 0 {
				return fmt.Errorf("%s holds the Lease; leader=%v warmingUp=%v", p.addr, m[decider.MetricLeader], m[decider.MetricWarmingUp])
			}
			leader = p
			return nil
		}
		return fmt.Errorf("the Lease names %q, none of the running replicas", id)
	})
	t.Logf("%s leads, warm, after %s", leader.addr, took.Round(100*time.Millisecond))
	return leader
}

func (p *webhookProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// decisionPaths sums the replica's Sidecar decisions by path.
func (p *webhookProc) decisionPaths(t *testing.T) map[string]float64 {
	t.Helper()
	m, err := p.metrics()
	if err != nil {
		t.Fatalf("reading %s's metrics: %v", p.addr, err)
	}
	out := map[string]float64{}
	for name, v := range m {
		rest, ok := strings.CutPrefix(name, webhook.MetricSidecarDecisions+`{path="`)
		if !ok {
			continue
		}
		path, _, _ := strings.Cut(rest, `"`)
		out[path] += v
	}
	return out
}

// answer is one replica's answer to one of the conflicting Sidecars.
type answer struct {
	target  *webhookProc
	name    string
	result  reviewResult
	err     error
	stored  bool
	latency time.Duration
}

// fireConflicting sends namespace-wide Sidecars s0, s1, ... of namespace to
// targets (one each) at the same instant and stores each allowed one at once.
func fireConflicting(t *testing.T, namespace string, targets []*webhookProc) []answer {
	t.Helper()
	names := make([]string, len(targets))
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	return fireNamed(t, namespace, targets, names)
}

// fireNamed sends namespace-wide Sidecars names[i] to targets[i] at the same
// instant and stores each allowed one at once.
func fireNamed(t *testing.T, namespace string, targets []*webhookProc, names []string) []answer {
	t.Helper()
	answers := make([]answer, len(targets))
	barrier := make(chan struct{})
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := answer{target: target, name: names[i]}
			<-barrier
			uid := newUID()
			ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
			a.result, a.err = post(ctx, target.client, target.addr, webhook.ValidateSidecarsPath, sidecarReview(uid, namespace, a.name, namespaceWideSpec()), uid)
			cancel()
			a.latency = a.result.latency
			if a.err == nil && a.result.response.Allowed {
				// As the API server does right after the webhooks answer.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := env.client.Create(ctx, namespaceWideSidecar(namespace, a.name))
				cancel()
				if err != nil {
					a.err = fmt.Errorf("storing the admitted %s/%s: %w", namespace, a.name, err)
				} else {
					a.stored = true
				}
			}
			answers[i] = a
		}()
	}
	close(barrier)
	wg.Wait()
	return answers
}

// raceTally sums the answers of many namespaces.
type raceTally struct {
	namespaces, overAdmitted int
	allowed, denied, errored int
	// refused: 503 answers of a replica that could not decide safely (the
	// leader did not answer but may still be deciding); the API server
	// then refuses the write (failurePolicy Fail).
	refused                       int
	toDead                        int // requests to a replica that was not running (refused, as the API server would find it)
	slowest                       time.Duration
	errorSamples, overAdmittedIns []string
	refusalSample                 string
}

// add counts one namespace's answers; dead says which replicas were killed
// or stopped on purpose (their failures are expected).
func (r *raceTally) add(namespace string, answers []answer, dead func(*webhookProc) bool) {
	r.namespaces++
	admitted := 0
	for _, a := range answers {
		switch {
		case a.err != nil && dead(a.target):
			r.toDead++
			continue
		case a.err != nil:
			r.errored++
			if len(r.errorSamples) < 5 {
				r.errorSamples = append(r.errorSamples, fmt.Sprintf("%s via %s: %v", namespace, a.target.addr, a.err))
			}
		case a.result.response.Allowed:
			r.allowed++
			admitted++
		case a.result.response.Result != nil && a.result.response.Result.Code == http.StatusUnprocessableEntity:
			r.denied++
		case a.result.response.Result != nil && a.result.response.Result.Code == http.StatusServiceUnavailable && strings.Contains(a.result.message(), "may still be deciding"):
			r.refused++
			r.refusalSample = a.result.message()
		default:
			r.errored++
			if len(r.errorSamples) < 5 {
				r.errorSamples = append(r.errorSamples, fmt.Sprintf("%s via %s: %d %s", namespace, a.target.addr, a.result.response.Result.Code, a.result.message()))
			}
		}
		if a.latency > r.slowest {
			r.slowest = a.latency
		}
	}
	if admitted > 1 {
		r.overAdmitted++
		r.overAdmittedIns = append(r.overAdmittedIns, namespace)
	}
}

func (r *raceTally) String() string {
	return fmt.Sprintf("%d namespaces: more than one admitted in %d; answers: %d allowed, %d denied, %d refused (503, leader may be deciding), %d errors, %d to a stopped replica; slowest %s",
		r.namespaces, r.overAdmitted, r.allowed, r.denied, r.refused, r.errored, r.toDead, r.slowest.Round(time.Millisecond))
}

// check fails the test unless no namespace got more than one Sidecar and
// every live replica answered properly within the webhook timeout.
func (r *raceTally) check(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: %s", what, r)
	if r.overAdmitted != 0 {
		t.Errorf("%s: more than one conflicting Sidecar admitted in %d namespaces (%v), want 0", what, r.overAdmitted, r.overAdmittedIns)
	}
	if r.errored != 0 {
		t.Errorf("%s: %d answers from running replicas were errors, e.g. %v", what, r.errored, r.errorSamples)
	}
	if r.slowest >= webhookTimeout {
		t.Errorf("%s: the slowest answer took %s, past the webhook timeout %s", what, r.slowest, webhookTimeout)
	}
}

func never(*webhookProc) bool { return false }

// TestDeciderRaceTwoReplicas and TestDeciderRaceThreeReplicas: with the
// leader steady, conflicting Sidecars fired at the same instant, one through
// each replica, and stored as soon as allowed: one per namespace, every
// round.
func TestDeciderRaceTwoReplicas(t *testing.T)   { testDeciderRace(t, 2) }
func TestDeciderRaceThreeReplicas(t *testing.T) { testDeciderRace(t, 3) }

func testDeciderRace(t *testing.T, replicas int) {
	_, procs, _ := startDeciders(t, replicas)
	for round := 1; round <= deciderRaceRounds; round++ {
		var tally raceTally
		for range deciderRaceNamespaces {
			ns := createNamespace(t, "race")
			// Rotate which replica gets which name.
			rand.Shuffle(len(procs), func(i, j int) { procs[i], procs[j] = procs[j], procs[i] })
			tally.add(ns, fireConflicting(t, ns, procs), never)
		}
		tally.check(t, fmt.Sprintf("%d replicas, round %d", replicas, round))
	}
	for _, p := range procs {
		t.Logf("%s decisions by path: %v", p.addr, p.decisionPaths(t))
	}
}

// TestDeciderRaceLeaderKilled: the same while the leader is killed
// (SIGKILL) in the middle of a pair. The others decide themselves (the
// fallback) until one of them takes the Lease and warms up: still one per
// namespace, and every answer within the webhook timeout.
func TestDeciderRaceLeaderKilled(t *testing.T) {
	for _, replicas := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d replicas", replicas), func(t *testing.T) {
			_, procs, leader := startDeciders(t, replicas)
			isDead := func(p *webhookProc) bool { return p == leader }
			var before, after raceTally
			killedAt := time.Time{}
			const killAtPair = 10
			var newLeader *webhookProc
			var pairsSinceNewLeader int
			for i := 0; ; i++ {
				ns := createNamespace(t, "kill")
				targets := procs
				if !killedAt.IsZero() {
					// The API server reaches only running replicas; with one
					// left, both Sidecars go to it.
					targets = nil
					for _, p := range procs {
						if p != leader {
							targets = append(targets, p)
						}
					}
					if len(targets) == 1 {
						targets = append(targets, targets[0])
					}
				} else {
					rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
				}
				if i == killAtPair {
					killedAt = time.Now()
					go func() {
						// Somewhere inside the pair's decisions.
						time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
						_ = leader.cmd.Process.Kill()
					}()
				}
				answers := fireConflicting(t, ns, targets)
				if killedAt.IsZero() {
					before.add(ns, answers, never)
				} else {
					after.add(ns, answers, isDead)
				}
				if killedAt.IsZero() {
					continue
				}
				if newLeader == nil {
					for _, p := range procs {
						if p == leader {
							continue
						}
						if m, err := p.metrics(); err == nil && m[decider.MetricLeader] == 1 && m[decider.MetricWarmingUp] == 0 {
							newLeader = p
							t.Logf("%s leads, warm, %s after the kill", p.addr, time.Since(killedAt).Round(100*time.Millisecond))
						}
					}
				} else if pairsSinceNewLeader++; pairsSinceNewLeader >= 10 {
					break
				}
				if time.Since(killedAt) > takeoverTimeout {
					t.Fatalf("no replica led, warm, within %s of the kill", takeoverTimeout)
				}
			}
			before.check(t, "before the kill")
			after.check(t, "from the kill until 10 namespaces after a new leader warmed up")
			paths := map[string]float64{}
			for _, p := range procs {
				if p == leader {
					continue
				}
				for path, n := range p.decisionPaths(t) {
					paths[path] += n
				}
			}
			t.Logf("surviving replicas' decisions by path: %v", paths)
			if paths[webhook.PathFallback] == 0 || paths[webhook.PathLeader]+paths[webhook.PathLeaderWarmup] == 0 {
				t.Errorf("want decisions by the fallback (after the kill) and by the new leader, got %v", paths)
			}
		})
	}
}

// TestDeciderLeaderUnreachable: the leader stops answering (SIGSTOP: its
// connections stay open, nothing answers, its Lease is no longer renewed).
// A follower cannot tell a stopped leader from one it cannot reach: while
// the leader's Lease record is fresh it refuses (503, the API server then
// refuses the write) rather than decide next to a leader that may still be
// deciding; once the record has been unchanged for decider.QuietFor it
// decides itself (fallback, with a warning); once the Lease expires it
// leads. Every answer comes within the webhook timeout, the follower stays
// ready, and its metrics say which path decided. The old leader, woken up,
// knows its lease is stale and no longer decides as leader.
func TestDeciderLeaderUnreachable(t *testing.T) {
	_, procs, leader := startDeciders(t, 2)
	follower := procs[0]
	if follower == leader {
		follower = procs[1]
	}
	// Warm the follower's connection to the leader, as in steady use.
	warm := createNamespace(t, "unreachable-warm")
	if r := follower.sidecar(warm, "default", namespaceWideSpec()); !r.response.Allowed {
		t.Fatalf("steady state: denied: %s", r.message())
	}

	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = leader.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)

	// Until the follower leads: in fresh namespaces, two conflicting
	// Sidecars one after the other through the follower.
	var tally raceTally
	var firstFallback, firstRefusal time.Duration
	for follower.metric(decider.MetricLeader) != 1 {
		if time.Since(stopped) > takeoverTimeout {
			t.Fatalf("the follower did not lead within %s of the stop", takeoverTimeout)
		}
		ns := createNamespace(t, "unreachable")
		var answers []answer
		for _, name := range []string{"s0", "s1"} {
			a := fireNamed(t, ns, []*webhookProc{follower}, []string{name})[0]
			answers = append(answers, a)
			if a.err != nil {
				continue
			}
			switch {
			case firstRefusal == 0 && !a.result.response.Allowed && a.result.response.Result.Code == http.StatusServiceUnavailable:
				firstRefusal = time.Since(stopped)
			case firstFallback == 0 && a.result.response.Allowed && hasWarning(a.result, "did not answer"):
				firstFallback = time.Since(stopped)
			}
		}
		tally.add(ns, answers, never)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("leader stopped: first refusal after %s, first fallback admission after %s, the follower leads after %s",
		firstRefusal.Round(100*time.Millisecond), firstFallback.Round(100*time.Millisecond), time.Since(stopped).Round(100*time.Millisecond))
	tally.check(t, "leader stopped, until the follower led")
	if tally.refused == 0 || firstRefusal == 0 {
		t.Errorf("the follower never refused while the stopped leader's Lease was fresh")
	} else if !strings.Contains(tally.refusalSample, "may still be deciding") {
		t.Errorf("refusal message %q does not say why", tally.refusalSample)
	}
	if firstFallback == 0 {
		t.Errorf("the follower never decided itself (with the fallback's warning) between the quiet period and taking the Lease")
	} else if firstFallback < decider.QuietFor {
		t.Errorf("the follower decided itself %s after the stop, before the leader's record could be quiet for %s", firstFallback, decider.QuietFor)
	}
	if code, body, err := follower.readyz(""); err != nil || code != http.StatusOK {
		t.Errorf("the follower is not ready: %d %s %v", code, body, err)
	}
	if paths := follower.decisionPaths(t); paths[webhook.PathFallback] < 1 {
		t.Errorf("the follower's decisions by path %v show no fallback", paths)
	}

	// The old leader wakes up with a Lease it renewed long ago: it must
	// not decide as leader (the pairs below would otherwise race).
	leaderDecisionsBefore := leader.decisionPathsAfterResume(t, resume)
	if v := leader.metric(decider.MetricLeader); v != 0 {
		t.Errorf("the resumed old leader reports %s = %v", decider.MetricLeader, v)
	}
	var after raceTally
	for range 5 {
		ns := createNamespace(t, "resumed")
		after.add(ns, fireConflicting(t, ns, []*webhookProc{leader, follower}), never)
	}
	after.check(t, "old leader resumed, new leader deciding")
	if got := leader.decisionPaths(t); got[webhook.PathLeader] != leaderDecisionsBefore[webhook.PathLeader] {
		t.Errorf("the resumed old leader decided %v times as leader", got[webhook.PathLeader]-leaderDecisionsBefore[webhook.PathLeader])
	}
	if code, _, err := leader.readyz(""); err != nil || code != http.StatusOK {
		t.Errorf("the resumed old leader is not ready: %d %v", code, err)
	}
}

// decisionPathsAfterResume resumes a stopped process and reads its decision
// counts at once.
func (p *webhookProc) decisionPathsAfterResume(t *testing.T, resume func()) map[string]float64 {
	t.Helper()
	resume()
	return p.decisionPaths(t)
}

// TestDeciderLeaderRestarted: the leader is restarted as in a rollout
// (SIGTERM, a new process). It releases the Lease on its way out, so the
// other replica leads at once, warming up; conflicting pairs throughout get
// one admission each, every answer within the webhook timeout.
func TestDeciderLeaderRestarted(t *testing.T) {
	leaseNamespace, procs, leader := startDeciders(t, 2)
	other := procs[0]
	if other == leader {
		other = procs[1]
	}
	var tally raceTally
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = leader.cmd.Process.Signal(syscall.SIGTERM)
		<-leader.exited
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ns := createNamespace(t, "restart")
		tally.add(ns, fireConflicting(t, ns, []*webhookProc{other, leader}), func(p *webhookProc) bool { return p == leader })
		select {
		case <-stopped:
			deadline = time.Now()
		default:
		}
	}
	<-stopped
	t.Logf("the leader exited; the other replica: %s = %v", decider.MetricLeader, other.metric(decider.MetricLeader))
	testenv.Eventually(t, 5*time.Second, "the other replica leading (the Lease was released)", func(context.Context) error {
		if v := other.metric(decider.MetricLeader); v != 1 {
			return fmt.Errorf("%s = %v", decider.MetricLeader, v)
		}
		return nil
	})
	restarted := startDecider(t, leaseNamespace)
	procs = []*webhookProc{other, restarted}
	for range 10 {
		ns := createNamespace(t, "restarted")
		tally.add(ns, fireConflicting(t, ns, procs), never)
	}
	tally.check(t, "leader restarted")
	if paths := restarted.decisionPaths(t); paths[webhook.PathForwarded] == 0 {
		t.Errorf("the restarted replica's decisions by path %v: want it following the new leader (forwarded)", paths)
	}
	t.Logf("new leader's decisions by path: %v", other.decisionPaths(t))
}

// TestDeciderLeaseLost: the leader loses its Lease because it can no
// longer reach the API server (its own connection is cut; it still serves,
// and the other replica still reaches both). It decides as leader only while
// its last renewal is recent (decider.ValidFor), then refuses (503) what it
// cannot confirm; the other replica, refused by it, decides itself until it
// takes the Lease. Throughout: one admission per namespace, every answer
// within the webhook timeout, both replicas ready, and the metrics say who
// decided.
func TestDeciderLeaseLost(t *testing.T) {
	leaseNamespace := createNamespace(t, "decider")
	proxy := startCuttableProxy(t, env.cluster.Config.Host)
	// Started first, so that it takes the Lease.
	cutOff := startWebhook(t, "--kubeconfig="+proxy.kubeconfig(t), "--leader-elect=true", "--leader-election-namespace="+leaseNamespace,
		"--advertise-address=127.0.0.1", "--decider-server-name=localhost", "--audit-interval=0", "--reconcile-pods=false")
	waitSteadyLeader(t, leaseNamespace, []*webhookProc{cutOff}, 60*time.Second)
	other := startDecider(t, leaseNamespace)
	procs := []*webhookProc{cutOff, other}
	if leader := waitSteadyLeader(t, leaseNamespace, procs, 30*time.Second); leader != cutOff {
		t.Fatalf("the replica to cut off does not lead")
	}

	proxy.cut()
	cut := time.Now()
	// While cut off, the cut-off replica's own answers may be refusals
	// (503): it can neither decide as leader nor confirm. Never "allowed"
	// without either.
	refusedByCutOff := 0
	var lost raceTally
	var otherLed time.Duration
	for time.Since(cut) < takeoverTimeout {
		ns := createNamespace(t, "lost")
		answers := fireConflicting(t, ns, procs)
		for _, a := range answers {
			if a.target == other && a.err == nil && !a.result.response.Allowed && a.result.response.Result.Code != http.StatusUnprocessableEntity {
				t.Errorf("the replica that reaches the API server did not decide: %d %s", a.result.response.Result.Code, a.result.message())
			}
			if a.target == cutOff && a.err == nil && !a.result.response.Allowed && a.result.response.Result.Code == http.StatusServiceUnavailable {
				refusedByCutOff++
			}
		}
		lost.add(ns, answers, never)
		if otherLed == 0 && other.metric(decider.MetricLeader) == 1 && other.metric(decider.MetricWarmingUp) == 0 {
			otherLed = time.Since(cut)
			break
		}
	}
	if otherLed == 0 {
		t.Fatalf("the other replica did not lead within %s of the cut", takeoverTimeout)
	}
	t.Logf("cut off: the other replica leads, warm, %s after the cut; the cut-off replica refused %d reviews meanwhile", otherLed.Round(100*time.Millisecond), refusedByCutOff)
	lost.check(t, "leader cut off from the API server until the other replica led")
	if v := cutOff.metric(decider.MetricLeader); v != 0 {
		t.Errorf("the cut-off replica still reports %s = %v", decider.MetricLeader, v)
	}
	if paths := other.decisionPaths(t); paths[webhook.PathFallback] == 0 {
		t.Errorf("the other replica's decisions by path %v: want fallback ones between the lost lease and its own", paths)
	}
	for _, p := range procs {
		if code, body, err := p.readyz(""); err != nil || code != http.StatusOK {
			t.Errorf("%s not ready: %d %s %v", p.addr, code, body, err)
		}
	}

	proxy.restore()
	testenv.Eventually(t, 30*time.Second, "the cut-off replica following the new leader", func(context.Context) error {
		ns := createNamespace(t, "restored-probe")
		r := cutOff.sidecar(ns, "default", namespaceWideSpec())
		if !r.response.Allowed {
			return fmt.Errorf("%d %s", r.response.Result.Code, r.message())
		}
		return nil
	})
	var again raceTally
	for range 10 {
		ns := createNamespace(t, "restored")
		again.add(ns, fireConflicting(t, ns, procs), never)
	}
	again.check(t, "after the connection came back")
	var summary []string
	for _, p := range procs {
		summary = append(summary, fmt.Sprintf("%s %v", p.addr, p.decisionPaths(t)))
	}
	sort.Strings(summary)
	t.Logf("decisions by path: %s", strings.Join(summary, "; "))
}

// cuttableProxy forwards TCP connections to the API server until cut: then
// it drops every connection and every new one at once, as a network
// partition between one replica and the API server would.
type cuttableProxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	isCut  bool
	conns  map[net.Conn]bool
	closed bool
}

func startCuttableProxy(t *testing.T, apiServerURL string) *cuttableProxy {
	t.Helper()
	u, err := url.Parse(apiServerURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{target: u.Host, ln: ln, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		ln.Close()
		p.cut()
	})
	return p
}

func (p *cuttableProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.isCut || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *cuttableProxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.isCut {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[up] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *cuttableProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = false
}

// kubeconfig writes the cluster's kubeconfig pointed at the proxy.
func (p *cuttableProxy) kubeconfig(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range cfg.Clusters {
		u, err := url.Parse(cluster.Server)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = p.ln.Addr().String()
		cluster.Server = u.String()
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
