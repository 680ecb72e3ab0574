package presence

import (
	"sort"
	"sync"
)

// Memory is the single-node Backend: a map of room to count, nothing else.
// Empty rooms are deleted so that memory returns to idle when clients go.
type Memory struct {
	mu     sync.Mutex
	counts map[string]int
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{counts: make(map[string]int)}
}

// Join implements Backend.
func (m *Memory) Join(room string, _ Member) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[room]++
	return m.counts[room], nil
}

// Leave implements Backend. It never goes below zero, whatever the caller
// does, so that no client is ever shown a negative count.
func (m *Memory) Leave(room string, _ Member) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.counts[room] - 1
	if n <= 0 {
		delete(m.counts, room)
		return 0
	}
	m.counts[room] = n
	return n
}

// Count implements Backend.
func (m *Memory) Count(room string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[room]
}

// Rooms implements Backend.
func (m *Memory) Rooms(limit int) ([]RoomCount, int) {
	m.mu.Lock()
	all := make([]RoomCount, 0, len(m.counts))
	for name, n := range m.counts {
		all = append(all, RoomCount{Room: name, Count: n})
	}
	m.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Room < all[j].Room })
	if limit >= 0 && len(all) > limit {
		return all[:limit:limit], len(all)
	}
	return all, len(all)
}
