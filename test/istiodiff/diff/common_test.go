package diff

import (
	"fmt"
	"maps"
	"math/rand"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// seedFor returns the seed a generated test uses: its committed base seed,
// or ISTIODIFF_SEED when set (so other seeds can be tried without editing).
func seedFor(t *testing.T, base int64) int64 {
	t.Helper()
	if s := os.Getenv("ISTIODIFF_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("ISTIODIFF_SEED=%q: %v", s, err)
		}
		return n
	}
	return base
}

// scaled multiplies a committed case count by ISTIODIFF_SCALE (default 1).
func scaled(t *testing.T, n int) int {
	t.Helper()
	s := os.Getenv("ISTIODIFF_SCALE")
	if s == "" {
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		t.Fatalf("ISTIODIFF_SCALE=%q: not a positive number", s)
	}
	if m := int(float64(n) * f); m > 0 {
		return m
	}
	return 1
}

// maxPrinted bounds how many disagreements a test prints in full.
const maxPrinted = 15

// recorder counts the cases a differential test checked and collects its
// disagreements; finish fails the test with the first few printed in full.
// Safe for concurrent use.
type recorder struct {
	t    *testing.T
	what string
	seed int64

	mu            sync.Mutex
	checked       int
	skipped       map[string]int
	allowed       map[string]int
	disagreements []string
	kinds         map[string]int
	tally         map[string]int
}

func newRecorder(t *testing.T, what string, seed int64) *recorder {
	return &recorder{t: t, what: what, seed: seed, skipped: map[string]int{}, allowed: map[string]int{}, kinds: map[string]int{}, tally: map[string]int{}}
}

// ok records a case checked without disagreement.
func (r *recorder) ok() {
	r.mu.Lock()
	r.checked++
	r.mu.Unlock()
}

// skip records a generated case that is not compared, and why.
func (r *recorder) skip(why string) {
	r.mu.Lock()
	r.skipped[why]++
	r.mu.Unlock()
}

// allow records a case whose difference is on the allow-list.
func (r *recorder) allow(reason string) {
	r.mu.Lock()
	r.checked++
	r.allowed[reason]++
	r.mu.Unlock()
}

// allowAll records one case whose difference is explained by the
// allow-list entries reasons.
func (r *recorder) allowAll(reasons []string) {
	r.mu.Lock()
	r.checked++
	for _, reason := range reasons {
		r.allowed[reason]++
	}
	r.mu.Unlock()
}

// disagree records a checked case where the project and Istio differ. kind
// groups disagreements for the summary; detail is the full, readable case.
func (r *recorder) disagree(kind, detail string) {
	r.mu.Lock()
	r.checked++
	r.kinds[kind]++
	r.disagreements = append(r.disagreements, "["+kind+"]\n"+detail)
	r.mu.Unlock()
}

// count tallies an outcome, to show what the generated cases covered.
func (r *recorder) count(outcome string) {
	r.mu.Lock()
	r.tally[outcome]++
	r.mu.Unlock()
}

// finish logs the counts and fails the test if there were disagreements.
func (r *recorder) finish() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Logf("%s: %d cases compared (seed %d), %d disagreements", r.what, r.checked, r.seed, len(r.disagreements))
	for _, k := range sortedKeys(r.allowed) {
		r.t.Logf("  allowed (%d): %s", r.allowed[k], k)
	}
	if len(r.tally) > 0 {
		parts := make([]string, 0, len(r.tally))
		for _, k := range sortedKeys(r.tally) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.tally[k]))
		}
		r.t.Logf("  covered: %s", strings.Join(parts, ", "))
	}
	for _, k := range sortedKeys(r.skipped) {
		r.t.Logf("  not compared (%d): %s", r.skipped[k], k)
	}
	if len(r.disagreements) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d cases disagree with Istio (seed %d):\n", r.what, len(r.disagreements), r.checked, r.seed)
	for _, k := range sortedKeys(r.kinds) {
		fmt.Fprintf(&b, "  %5d  %s\n", r.kinds[k], k)
	}
	// Print the shortest cases of each kind first: they are the easiest to
	// read and usually the minimal reproduction.
	ds := slices.Clone(r.disagreements)
	sort.SliceStable(ds, func(i, j int) bool { return len(ds[i]) < len(ds[j]) })
	seen := map[string]int{}
	printed := 0
	for _, d := range ds {
		kind := d[:strings.Index(d, "\n")]
		if seen[kind] >= 2 || printed >= maxPrinted {
			continue
		}
		seen[kind]++
		printed++
		fmt.Fprintf(&b, "\n%s\n", d)
	}
	r.t.Error(b.String())
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// formatLabels prints a label map in a stable, compact form; nil prints as
// "-" and an empty non-nil map as "{}".
func formatLabels(m map[string]string) string {
	if m == nil {
		return "-"
	}
	if len(m) == 0 {
		return "{}"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// pick returns a random element of choices.
func pick[T any](r *rand.Rand, choices ...T) T {
	return choices[r.Intn(len(choices))]
}

// chance is true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// parallel runs fn(0..n-1) on a few goroutines. Building istiod states
// overlaps well (they wait on fake controllers); 4 workers keep two cores
// busy.
func parallel(n int, fn func(i int)) {
	const workers = 4
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
