package presence

import (
	"sort"
	"sync"
)

// Memory is the single-node Backend: a Tally per room, nothing else. Empty
// rooms are deleted so that memory returns to idle when clients go.
type Memory struct {
	mu    sync.Mutex
	rooms map[string]*Tally
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{rooms: make(map[string]*Tally)}
}

// Join implements Backend.
func (m *Memory) Join(room string, mem Member) (Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.rooms[room]
	if t == nil {
		t = &Tally{}
		m.rooms[room] = t
	}
	t.Add(mem, 1)
	return t.Counts(), nil
}

// Leave implements Backend. Counts never go below zero, whatever the
// caller does, so that no client is ever shown a negative count.
func (m *Memory) Leave(room string, mem Member) Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.rooms[room]
	if t == nil {
		return Counts{}
	}
	t.Add(mem, -1)
	if t.Empty() {
		delete(m.rooms, room)
	}
	return t.Counts()
}

// Count implements Backend.
func (m *Memory) Count(room string) Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.rooms[room]; t != nil {
		return t.Counts()
	}
	return Counts{}
}

// Signed implements Backend.
func (m *Memory) Signed(room string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.rooms[room]; t != nil {
		return t.Signed()
	}
	return map[string]string{}
}

// Rooms implements Backend.
func (m *Memory) Rooms(limit int) ([]RoomCount, int) {
	m.mu.Lock()
	all := make([]RoomCount, 0, len(m.rooms))
	for name, t := range m.rooms {
		c := t.Counts()
		all = append(all, RoomCount{Room: name, Count: c.People, Connections: c.Connections})
	}
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
