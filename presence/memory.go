package presence

import (
	"sort"
	"sync"
)

// Memory is the single-node Backend: a Tally per room, nothing else.
type Memory struct {
	mu    sync.Mutex
	rooms Tallies
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{rooms: make(Tallies)}
}

// Join implements Backend.
func (m *Memory) Join(room string, mem Member) (Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms.Add(room, mem, 1), nil
}

// Leave implements Backend. Counts never go below zero, whatever the
// caller does, so that no client is ever shown a negative count.
func (m *Memory) Leave(room string, mem Member) Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms.Add(room, mem, -1)
}

// Count implements Backend.
func (m *Memory) Count(room string) Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms.Count(room)
}

// Signed implements Backend.
func (m *Memory) Signed(room string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms.Signed(room)
}

// SignedAfter implements Backend.
func (m *Memory) SignedAfter(room, after string) []MemberCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms.SignedAfter(room, after)
}

// Rooms implements Backend.
func (m *Memory) Rooms(limit int, keep func(string) bool) ([]RoomCount, int) {
	m.mu.Lock()
	all := m.rooms.List(keep)
	m.mu.Unlock()
	return LimitRooms(all, limit)
}

// LimitRooms sorts rooms by name and keeps the first limit (all if limit <
// 0), returning how many there were: the listing every backend gives.
func LimitRooms(all []RoomCount, limit int) ([]RoomCount, int) {
	sort.Slice(all, func(i, j int) bool { return all[i].Room < all[j].Room })
	if limit >= 0 && len(all) > limit {
		return all[:limit:limit], len(all)
	}
	return all, len(all)
}
