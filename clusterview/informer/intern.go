package informer

import (
	"hash/maphash"
	"maps"
	"sync"
	"time"
	"unique"
)

// labelInterner makes cached objects with equal label (or annotation) maps
// share one map. The pods of a ReplicaSet all carry the same labels, so a
// cluster of 100k pods holds a few thousand distinct label sets: sharing
// them is most of what the pod cache weighs, and fewer heap objects also
// make every garbage collection cheaper.
//
// Shared maps are safe because nothing writes to cached objects: the cache
// hands out deep copies, and the view reads without copying but never
// writes.
//
// Entries live in two generations. A lookup that hits the older one moves
// the entry to the current one, and every rotation drops the older
// generation: a label set no new object has used for two rotation periods
// leaves the table (the objects that hold it keep it), so the table never
// grows with label churn such as rollouts.
type labelInterner struct {
	seed   maphash.Seed
	period time.Duration
	now    func() time.Time

	mu        sync.Mutex
	current   map[uint64][]map[string]string
	previous  map[uint64][]map[string]string
	rotatedAt time.Time
}

// internRotation is how long a label set nobody uses stays in the table
// (between one and two periods).
const internRotation = 10 * time.Minute

func newLabelInterner() *labelInterner {
	return &labelInterner{
		seed:    maphash.MakeSeed(),
		period:  internRotation,
		now:     time.Now,
		current: map[uint64][]map[string]string{},
	}
}

// intern returns a map equal to m that is shared with every other caller
// that passed an equal map (a copy of m when it is the first of its kind).
// Nil and empty maps are returned as they are.
func (in *labelInterner) intern(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	h := in.hash(m)
	in.mu.Lock()
	defer in.mu.Unlock()
	if now := in.now(); now.Sub(in.rotatedAt) >= in.period {
		in.previous, in.current, in.rotatedAt = in.current, map[uint64][]map[string]string{}, now
	}
	for _, candidate := range in.current[h] {
		if maps.Equal(candidate, m) {
			return candidate
		}
	}
	for _, candidate := range in.previous[h] {
		if maps.Equal(candidate, m) {
			in.current[h] = append(in.current[h], candidate)
			return candidate
		}
	}
	// The first of its kind: keep a copy whose strings are interned too,
	// so that keys and values repeated across label sets ("app",
	// "version", namespace names) are stored once.
	shared := make(map[string]string, len(m))
	for k, v := range m {
		shared[internString(k)] = internString(v)
	}
	in.current[h] = append(in.current[h], shared)
	return shared
}

// hash is independent of map iteration order: the sum of one hash per
// key/value pair.
func (in *labelInterner) hash(m map[string]string) uint64 {
	var sum uint64
	var h maphash.Hash
	h.SetSeed(in.seed)
	for k, v := range m {
		h.Reset()
		h.WriteString(k)
		h.WriteByte(0)
		h.WriteString(v)
		sum += h.Sum64()
	}
	return sum
}

// internString returns the canonical copy of s; the runtime drops it once
// no object refers to it any more.
func internString(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}
