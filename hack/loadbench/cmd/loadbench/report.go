package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/hack/loadbench/load"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// targetLabel says in words which server answered.
var targetLabel = map[string]string{
	targetFloor:    "floor",
	targetAlone:    "one replica, leader election off (an admitted Sidecar confirmed by a direct read)",
	targetLeader:   "decision leader",
	targetFollower: "follower (forwards to the leader)",
	targetIstio:    "Istio's validation webhook",
	targetRelay:    "relay forwarding to a floor (the cheapest possible follower)",
}

// rows calls f for each non-floor result with the run's floor figures.
func rows(r Report, f func(s StateReport, run Run, x Result, floor load.Result)) {
	for _, s := range r.States {
		for _, run := range s.Runs {
			floor, _ := run.Get(targetFloor)
			for _, x := range run.Results {
				if x.Target != targetFloor {
					f(s, run, x, floor)
				}
			}
		}
	}
}

func printReport(w io.Writer, r Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "state\tscenario\tserver\tc\trps\tp50 ms\tp99 ms\tp99.9 ms\terrors\tfloor rps\tfloor p50\tfloor p99\trps/floor\tp50/floor\tp99/floor\t")
	rows(r, func(s StateReport, run Run, x Result, f load.Result) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n",
			s.State.Name, run.Scenario, x.Target, run.Concurrency, x.Result.RPS, ms(x.Result.P50), ms(x.Result.P99), ms(x.Result.P999), x.Result.Errors+f.Errors,
			f.RPS, ms(f.P50), ms(f.P99),
			ratio(x.Result.RPS, f.RPS), ratio(float64(x.Result.P50), float64(f.P50)), ratio(float64(x.Result.P99), float64(f.P99)))
	})
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
		fmt.Fprintf(w, "%s: %d pods, %d Sidecars, %d namespaces; control plane start %s; state load %s (%d objects, %.0f/s%s); cache sync %s; decision leader warm %s after start; RSS after sync %s, after load %s (peak %s); Go heap in use %s / %s; load average %s → %s\n",
			s.State.Name, s.State.Pods(), s.State.Sidecars(), s.State.Namespaces, s.ControlPlane.Round(time.Millisecond),
			s.Load.Elapsed.Round(time.Second), s.Load.Objects, s.Load.PerSec, reusedNote(s.Load), s.CacheSync.Round(time.Millisecond),
			s.LeaderWarm.Round(time.Second),
			mib(s.MemoryIdle.RSS), mib(s.MemoryAfter.RSS), mib(s.MemoryAfter.PeakRSS), mib(s.MemoryIdle.HeapInuse), mib(s.MemoryAfter.HeapInuse),
			s.LoadAvgAtStart, s.LoadAvgAtEnd)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%-6s %s: %s\n", mark(t), t.Name, t.Measured)
	}
}

func mark(t Target) string {
	switch {
	case t.Info:
		return "-"
	case t.Met:
		return "met"
	}
	return "MISSED"
}

func reusedNote(l load.LoadStats) string {
	if l.Reused {
		return ", reused from --state-dir"
	}
	return ""
}

func find(r Report, state, scenario string, c int) (Run, bool) {
	for _, s := range r.States {
		if s.State.Name != state {
			continue
		}
		for _, run := range s.Runs {
			if run.Scenario == scenario && run.Concurrency == c {
				return run, true
			}
		}
	}
	return Run{}, false
}

func checkTargets(r Report) []Target {
	var out []Target
	for _, s := range r.States {
		name := s.State.Name
		if run, ok := find(r, name, "pod-annotated", 8); ok {
			x, _ := run.Get(targetAlone)
			f, _ := run.Get(targetFloor)
			p := float64(x.P50) / float64(f.P50)
			out = append(out, Target{Name: name + ": Pod CREATE p50 within 1.3x of the floor at c=8", Measured: fmt.Sprintf("%.2fx (%s vs %s ms)", p, ms(x.P50), ms(f.P50)), Met: p <= 1.3 && x.Errors == 0})
			t := x.RPS / f.RPS
			out = append(out, Target{Name: name + ": Pod CREATE throughput at least 75% of the floor at c=8", Measured: fmt.Sprintf("%.0f%% (%.0f vs %.0f rps)", 100*t, x.RPS, f.RPS), Met: t >= 0.75 && x.Errors == 0})
		}
		if run, ok := find(r, name, "sidecar-admitted", 8); ok && name == benchdata.Large.Name {
			if x, ok := run.Get(targetLeader); ok {
				out = append(out, Target{Name: name + ": Sidecar CREATE (admitted) decided by the leader, p99 under 10 ms at c=8", Measured: ms(x.P99) + " ms", Met: x.P99 < 10*time.Millisecond && x.Errors == 0})
			}
			for _, t := range []string{targetFollower, targetAlone} {
				if x, ok := run.Get(t); ok {
					out = append(out, Target{Name: name + ": the same, " + targetLabel[t] + ", p99 at c=8", Measured: ms(x.P99) + " ms", Info: true})
				}
			}
		}
		if run, ok := find(r, name, ratingsScenario, 8); ok {
			istio, _ := run.Get(targetIstio)
			for _, t := range []string{targetLeader, targetFollower, targetAlone} {
				x, ok := run.Get(t)
				if !ok {
					continue
				}
				q := x.RPS / istio.RPS
				tg := Target{Name: fmt.Sprintf("%s: ratings Sidecar CREATE, %s at least 1.0x Istio's requests/s at c=8", name, targetLabel[t]),
					Measured: fmt.Sprintf("%.2fx (%.0f vs %.0f rps)", q, x.RPS, istio.RPS), Met: q >= 1.0 && x.Errors == 0 && istio.Errors == 0}
				if t == targetAlone {
					tg.Name = fmt.Sprintf("%s: ratings Sidecar CREATE, %s, against Istio's requests/s at c=8", name, targetLabel[t])
					tg.Info = true
				}
				out = append(out, tg)
			}
			if x, ok := run.Get(targetRelay); ok {
				out = append(out, Target{
					Name:     fmt.Sprintf("%s: ratings Sidecar CREATE through a relay that forwards to a floor (the cheapest possible follower), against Istio's requests/s at c=8", name),
					Measured: fmt.Sprintf("%.2fx (%.0f vs %.0f rps)", x.RPS/istio.RPS, x.RPS, istio.RPS),
					Info:     true,
				})
			}
		}
		if name == benchdata.Large.Name {
			m := s.MemoryAfter.PeakRSS
			out = append(out, Target{Name: name + ": resident memory at most 200 MiB", Measured: "peak " + mib(m) + ", after sync " + mib(s.MemoryIdle.RSS), Met: m <= 200<<20})
		}
		out = append(out, Target{Name: name + ": cache sync within 30 s", Measured: s.CacheSync.Round(time.Millisecond).String(), Met: s.CacheSync <= 30*time.Second})
	}
	// Large against small, path by path: p50 and throughput.
	for _, small := range r.States {
		if small.State.Name != benchdata.Small.Name {
			continue
		}
		for _, sr := range small.Runs {
			lr, ok := find(r, benchdata.Large.Name, sr.Scenario, sr.Concurrency)
			if !ok {
				continue
			}
			sf, _ := sr.Get(targetFloor)
			lf, _ := lr.Get(targetFloor)
			for _, sx := range sr.Results {
				lx, ok := lr.Get(sx.Target)
				if !ok || sx.Target == targetFloor || sx.Target == targetIstio || sx.Target == targetRelay {
					continue
				}
				s := sx.Result
				dp := float64(lx.P50)/float64(s.P50) - 1
				dr := lx.RPS/s.RPS - 1
				// The floor moves too on a shared machine; the ratio to
				// the floor is the steadier comparison.
				fp := (float64(lx.P50)/float64(lf.P50))/(float64(s.P50)/float64(sf.P50)) - 1
				out = append(out, Target{
					Name:     fmt.Sprintf("large within 10%% of small: %s, %s, c=%d", sr.Scenario, sx.Target, sr.Concurrency),
					Measured: fmt.Sprintf("p50 %+.0f%%, rps %+.0f%%, p50/floor %+.0f%%", 100*dp, 100*dr, 100*fp),
					Met:      dp <= 0.10 && dr >= -0.10,
				})
			}
		}
	}
	return out
}

func writeMarkdown(w io.Writer, r Report) {
	fmt.Fprintln(w, "| state | scenario | server | c | rps | p50 ms | p99 ms | p99.9 ms | floor rps | floor p50 | floor p99 | rps / floor | p50 / floor | p99 / floor | errors |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	rows(r, func(s StateReport, run Run, x Result, f load.Result) {
		fmt.Fprintf(w, "| %s | %s | %s | %d | %.0f | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %d |\n",
			s.State.Name, run.Scenario, x.Target, run.Concurrency, x.Result.RPS, ms(x.Result.P50), ms(x.Result.P99), ms(x.Result.P999),
			f.RPS, ms(f.P50), ms(f.P99),
			ratio(x.Result.RPS, f.RPS), ratio(float64(x.Result.P50), float64(f.P50)), ratio(float64(x.Result.P99), float64(f.P99)), x.Result.Errors+f.Errors)
	})
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
	fmt.Fprintln(w, "| state | pods / Sidecars / namespaces | state load | cache sync | decision leader warm | RSS after sync | peak RSS | Go heap in use (sync / end) | live heap after GC | load average (start → end) |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|---|")
	for _, s := range r.States {
		fmt.Fprintf(w, "| %s | %d / %d / %d | %s (%d objects%s) | %s | %s | %s | %s | %s / %s | %s | %s → %s |\n",
			s.State.Name, s.State.Pods(), s.State.Sidecars(), s.State.Namespaces,
			s.Load.Elapsed.Round(time.Second), s.Load.Objects, reusedNote(s.Load), s.CacheSync.Round(time.Millisecond), s.LeaderWarm.Round(time.Second),
			mib(s.MemoryIdle.RSS), mib(s.MemoryAfter.PeakRSS), mib(s.MemoryIdle.HeapInuse), mib(s.MemoryAfter.HeapInuse), mib(s.LiveHeap),
			s.LoadAvgAtStart, s.LoadAvgAtEnd)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, t.Measured, strings.ToLower(mark(t)))
	}
}

// scenarioLabel says in words what a scenario sends.
var scenarioLabel = map[string]string{
	"sidecar-admitted": "Sidecar CREATE admitted (every rule, conflict checks)",
	"sidecar-denied":   "Sidecar CREATE denied (conflict)",
	"pod-annotated":    "Pod CREATE annotated",
	ratingsScenario:    "the reference's ratings Sidecar CREATE",
}

// writeSummary is the README's short table: concurrency 8 (or the first
// concurrency measured) per scenario, server and state, then the targets.
func writeSummary(w io.Writer, r Report) {
	fmt.Fprintln(w, "| state | request | server | rps (floor) | p50 ms (floor) | p99 ms (floor) |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|")
	for _, s := range r.States {
		c := 0
		for _, run := range s.Runs {
			if c == 0 || run.Concurrency == 8 {
				c = run.Concurrency
			}
		}
		for _, run := range s.Runs {
			if run.Concurrency != c {
				continue
			}
			f, _ := run.Get(targetFloor)
			for _, x := range run.Results {
				if x.Target == targetFloor {
					continue
				}
				fmt.Fprintf(w, "| %s (c=%d) | %s | %s | %.0f (%.0f) | %s (%s) | %s (%s) |\n",
					s.State.Name, c, scenarioLabel[run.Scenario], targetLabel[x.Target],
					x.Result.RPS, f.RPS, ms(x.Result.P50), ms(f.P50), ms(x.Result.P99), ms(f.P99))
			}
		}
	}
	for _, s := range r.States {
		fmt.Fprintf(w, "\n%s state (%d pods, %d Sidecars, %d namespaces): cache sync %s, RSS %s after sync and %s at peak, Go heap in use %s.",
			s.State.Name, s.State.Pods(), s.State.Sidecars(), s.State.Namespaces, s.CacheSync.Round(time.Millisecond),
			mib(s.MemoryIdle.RSS), mib(s.MemoryAfter.PeakRSS), mib(s.MemoryIdle.HeapInuse))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		if strings.HasPrefix(t.Name, "large within 10% of small") {
			continue
		}
		fmt.Fprintf(w, "- %s: %s (%s)\n", t.Name, t.Measured, strings.ToLower(mark(t)))
	}
}
