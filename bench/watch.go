package main

// The watch target (README: "The watch target"): what following many rooms
// over one stream (GET /watch?rooms=...) costs the service, against the same
// information delivered as one /rooms/{room}/events stream per watcher and
// room, measured in the same invocation.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// watchConfig is the watch target's part of the flags.
type watchConfig struct {
	Watchers  []int         // sizes of the watch way, one run each
	Rooms     int           // rooms the watchers choose from
	Follow    int           // rooms per watcher
	Present   int           // present streams spread over the rooms
	Budget    int           // streams the one-stream-per-room run may hold, present ones included
	Churn     float64       // present streams replaced per second (a leave and a join each)
	ChurnTime time.Duration // length of each churn phase
	Probes    int           // fan-out probes per kind
	Rate      float64       // connects per second
	Sources   int
	SVGPath   string
}

// Modes of a watch run.
const (
	modeWatch   = "watch"   // one GET /watch stream per watcher
	modeStreams = "streams" // one GET /rooms/{room}/events stream per watcher and room
)

// check refuses settings that could not be measured as meant.
func (c watchConfig) check(nofile uint64) error {
	switch {
	case c.Rooms < 1 || c.Follow < 1 || c.Follow > c.Rooms:
		return errors.New("--watch-follow must be in [1, --watch-rooms]")
	case c.Rooms%c.Follow != 0:
		return errors.New("--watch-rooms must be a multiple of --watch-follow (watchers are dealt the rooms in laps)")
	case c.Present < c.Rooms:
		return errors.New("--watch-present must be at least --watch-rooms")
	case c.Churn <= 0 || c.ChurnTime <= 0:
		return errors.New("--watch-churn and --watch-churn-time must be positive")
	case len(c.Watchers) == 0:
		return errors.New("--watchers: no sizes")
	}
	if c.streamWatchers() < 1 {
		return fmt.Errorf("--watch-budget %d leaves no room for a watcher of %d streams beside %d present ones", c.Budget, c.Follow, c.Present)
	}
	if uint64(c.Budget)+100 > nofile {
		return fmt.Errorf("--watch-budget %d needs more than the %d open files a process may have", c.Budget, nofile)
	}
	for _, w := range c.Watchers {
		if w < 1 || w*c.Follow%c.Rooms != 0 {
			return fmt.Errorf("--watchers: %d x %d rooms must be a multiple of %d rooms, so that every room has as many watchers", w, c.Follow, c.Rooms)
		}
		if uint64(c.Present+w+w*c.Follow/c.Rooms)+100 > nofile {
			return fmt.Errorf("--watchers: %d watchers and %d present streams need more than %d open files", w, c.Present, nofile)
		}
	}
	if per := (c.Budget + c.Sources - 1) / c.Sources; per > 25000 {
		return fmt.Errorf("%d connections per source address is too many; raise --sources", per)
	}
	return nil
}

// streamWatchers is how many watchers the one-stream-per-room way holds
// within the budget.
func (c watchConfig) streamWatchers() int { return (c.Budget - c.Present) / c.Follow }

// followSets deals each of watchers its follow rooms out of rooms: watchers
// come in laps of rooms/follow, each lap a fresh seeded permutation of the
// rooms of which each watcher takes the next follow. So the rooms of one
// watcher are distinct, two laps differ, and when watchers × follow is a
// multiple of rooms every room has exactly watchers × follow / rooms
// watchers: a change in any room reaches as many streams.
func followSets(watchers, rooms, follow int, seed uint64) [][]int32 {
	perLap := rooms / follow
	out := make([][]int32, watchers)
	var perm []int
	for w := range watchers {
		lap, slot := w/perLap, w%perLap
		if slot == 0 {
			perm = rand.New(rand.NewPCG(seed, uint64(lap))).Perm(rooms)
		}
		set := make([]int32, follow)
		for j := range follow {
			set[j] = int32(perm[slot*follow+j])
		}
		out[w] = set
	}
	return out
}

// roomName is the name of room r; r == rooms is the reference room.
func roomName(r, rooms int) string {
	if r == rooms {
		return "ref"
	}
	return "room-" + strconv.Itoa(r)
}

// roomIndex is the inverse of roomName for the numbered rooms.
func roomIndex(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "room-")
	if !ok || s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// watchPath is the request of a watcher following rooms.
func watchPath(rooms []int32, total int) string {
	var b strings.Builder
	b.WriteString("/watch?rooms=")
	for i, r := range rooms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(roomName(int(r), total))
	}
	return b.String()
}

// parsePresence reads the room and people of a presence event's data,
// {"room":"a","people":2,"connections":3}.
func parsePresence(data []byte) (string, int64, error) {
	var d struct {
		Room   string `json:"room"`
		People *int64 `json:"people"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return "", 0, fmt.Errorf("presence data %q: %w", data, err)
	}
	if d.Room == "" || d.People == nil {
		return "", 0, fmt.Errorf("presence data %q: no room or people", data)
	}
	return d.Room, *d.People, nil
}

// watcher is one /watch stream's view: per followed room the latest people
// count (-1 before the first) and when it last changed.
type watcher struct {
	rooms     []int32
	people    []atomic.Int64
	changedAt []atomic.Int64
}

func newWatcher(rooms []int32) *watcher {
	w := &watcher{rooms: rooms, people: make([]atomic.Int64, len(rooms)), changedAt: make([]atomic.Int64, len(rooms))}
	for i := range w.people {
		w.people[i].Store(-1)
	}
	return w
}

// hook is the event hook of the watcher's stream: each presence event sets
// its room's count and is one delivered room update.
func (w *watcher) hook(now func() int64, delivered *atomic.Int64, total int) eventHook {
	return func(event, data []byte) (bool, error) {
		if string(event) != "presence" {
			return false, nil
		}
		name, v, err := parsePresence(data)
		if err != nil {
			return false, err
		}
		r, ok := roomIndex(name)
		pos := slices.Index(w.rooms, int32(r))
		if !ok || r >= total || pos < 0 {
			return false, fmt.Errorf("presence of room %q, which this stream does not follow", name)
		}
		if w.people[pos].Load() != v {
			w.changedAt[pos].Store(now())
			w.people[pos].Store(v)
		}
		delivered.Add(1)
		return true, nil
	}
}

// watchRun is one run of the watch target against a fresh server.
type watchRun struct {
	cfg          watchConfig
	mode         string
	l            *load
	hooks        streamHooks
	roomOf       []int32        // per client slot: its room (cfg.Rooms: the reference room), -1 for a /watch stream
	watchers     []*watcher     // per client slot: its /watch view, or nil
	people       []atomic.Int64 // per room: open room streams, the count the service should show
	delivered    atomic.Int64   // room updates received by the watchers' streams
	present      []int32        // slots of the present streams churn may replace
	watcherSlots []int32        // slots of the watchers' streams
	followers    [][]int32      // per room, watch mode: the slots of its watchers
	next         int            // next free client slot
	rng          *rand.Rand
}

// watchTarget is one place where a change of a room must show.
type watchTarget struct{ value, changedAt *atomic.Int64 }

// watchersOf returns the views of room r of its open watchers.
func (wr *watchRun) watchersOf(r int) []watchTarget {
	var out []watchTarget
	for _, id := range wr.followers[r] {
		if wr.l.clients[id].state.Load() != stOpen {
			continue
		}
		w := wr.watchers[id]
		pos := slices.Index(w.rooms, int32(r))
		out = append(out, watchTarget{&w.people[pos], &w.changedAt[pos]})
	}
	return out
}

func newWatchRun(cfg watchConfig, mode string, l *load, slots int) *watchRun {
	wr := &watchRun{
		cfg: cfg, mode: mode, l: l,
		roomOf: make([]int32, slots), watchers: make([]*watcher, slots),
		people: make([]atomic.Int64, cfg.Rooms+1), followers: make([][]int32, cfg.Rooms),
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11)),
	}
	h := l.hooks()
	first, fail := h.onFirst, h.onFail
	h.onFirst = func(c *client) {
		if r := wr.roomOf[c.id]; r >= 0 {
			wr.people[r].Add(1)
		}
		first(c)
	}
	h.onFail = func(c *client, kind int, err error, wasOpen bool) {
		if r := wr.roomOf[c.id]; wasOpen && r >= 0 {
			wr.people[r].Add(-1)
		}
		fail(c, kind, err, wasOpen)
	}
	wr.hooks = h
	return wr
}

// start opens client slot id on path, in room (-1: none).
func (wr *watchRun) start(path string, room int32, hook eventHook) int32 {
	id := wr.next
	wr.next++
	c := &wr.l.clients[id]
	c.path, c.hook = path, hook
	wr.roomOf[id] = room
	wr.l.ready.Add(1)
	wr.l.exited.Add(1)
	go runClient(c, wr.l.dialers[id%len(wr.l.dialers)], wr.l.srvs[0].addr, wr.hooks)
	return int32(id)
}

// roomPath is the request of a stream present in room r.
func (wr *watchRun) roomPath(r int) string {
	return "/rooms/" + roomName(r, wr.cfg.Rooms) + "/events"
}

// ramp starts n clients at cfg.Rate per second (open(i) starts the i-th)
// and waits until each is open or failed.
func (wr *watchRun) ramp(ctx context.Context, n int, open func(i int)) error {
	start := time.Now()
	for i := 0; i < n; {
		if err := wr.alive(ctx); err != nil {
			return err
		}
		due := min(n, int(time.Since(start).Seconds()*wr.cfg.Rate)+1)
		for ; i < due; i++ {
			open(i)
		}
		time.Sleep(time.Millisecond)
	}
	limit := time.Duration(float64(n)/wr.cfg.Rate*float64(time.Second)) + 2*openTimeout
	if err := waitGroupCtx(ctx, &wr.l.ready, limit); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		progress("  warning: ramp not settled after %v", limit)
	}
	return nil
}

func (wr *watchRun) alive(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !wr.l.srvs[0].alive() {
		return errServerDied
	}
	return nil
}

// settled reports whether every open stream shows the count of each of its
// rooms that the tool expects.
func (wr *watchRun) settled() bool {
	for i := range wr.next {
		c := &wr.l.clients[i]
		if c.state.Load() != stOpen {
			continue
		}
		if r := wr.roomOf[i]; r >= 0 {
			if c.latest.Load() != wr.people[r].Load() {
				return false
			}
			continue
		}
		w := wr.watchers[i]
		for pos, r := range w.rooms {
			if w.people[pos].Load() != wr.people[r].Load() {
				return false
			}
		}
	}
	return true
}

// settle waits until settled, for at most convergeTimeout.
func (wr *watchRun) settle(ctx context.Context, after string) error {
	deadline := time.Now().Add(convergeTimeout)
	for !wr.settled() {
		if err := wr.alive(ctx); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("counts not right %v after %s", convergeTimeout, after)
		}
		time.Sleep(pollEvery)
	}
	return nil
}

// churn replaces cfg.Churn present streams a second for cfg.ChurnTime: a
// random one leaves (its socket closed) and a new one joins a random room.
// It returns the replacements made.
func (wr *watchRun) churn(ctx context.Context) (int, error) {
	n := int(wr.cfg.Churn * wr.cfg.ChurnTime.Seconds())
	start := time.Now()
	ops := 0
	for ops < n {
		if err := wr.alive(ctx); err != nil {
			return ops, err
		}
		due := min(n, int(time.Since(start).Seconds()*wr.cfg.Churn)+1)
		for ; ops < due; ops++ {
			j := wr.rng.IntN(len(wr.present))
			id := wr.present[j]
			if c := &wr.l.clients[id]; c.closeByUs() {
				wr.l.left(c)
				wr.people[wr.roomOf[id]].Add(-1)
			}
			r := wr.rng.IntN(wr.cfg.Rooms)
			wr.present[j] = wr.start(wr.roomPath(r), int32(r), nil)
		}
		time.Sleep(time.Millisecond)
	}
	return ops, nil
}

// probeRoom joins room with one extra stream, then leaves, each at a random
// phase, and returns for each target the time from just before the join's
// request (then just before the leave's close) until it showed the new
// count. A step whose targets do not all get there within probeTimeout
// counts as a timeout.
func (wr *watchRun) probeRoom(ctx context.Context, room int, targets []watchTarget) (lat []int64, timeouts int, err error) {
	l := wr.l
	base := wr.people[room].Load()
	wait := func(want, t0 int64) error {
		deadline := time.Now().Add(probeTimeout)
		for {
			done := true
			for _, t := range targets {
				if t.value.Load() != want {
					done = false
					break
				}
			}
			if done {
				for _, t := range targets {
					lat = append(lat, max(0, t.changedAt.Load()-t0))
				}
				return nil
			}
			if err := wr.alive(ctx); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				timeouts++
				progress("  probe of %s: timeout", roomName(room, wr.cfg.Rooms))
				return nil
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := sleepCtx(ctx, rand.N(probeJitter)); err != nil {
		return lat, timeouts, err
	}
	probe := &client{person: -1, path: wr.roomPath(room)}
	probe.latest.Store(-1)
	got := make(chan struct{}, 1)
	var exited sync.WaitGroup
	exited.Add(1)
	go func() {
		defer exited.Done()
		runClient(probe, l.dialers[0], l.srvs[0].addr, streamHooks{
			now:     l.now,
			onFirst: func(*client) { got <- struct{}{} },
			onFail: func(_ *client, kind int, err error, wasOpen bool) {
				if kind >= 0 {
					progress("  probe failure (%s): %v", failNames[kind], err)
				}
				if !wasOpen {
					got <- struct{}{}
				}
			},
		})
	}()
	defer waitGroupTimeout(&exited, 5*time.Second)
	defer probe.closeByUs()
	for probe.requestAt.Load() == 0 && probe.state.Load() == stPending {
		time.Sleep(100 * time.Microsecond) // the dial; requestAt is set just before the write
	}
	if err := wait(base+1, probe.requestAt.Load()); err != nil {
		return lat, timeouts, err
	}
	select {
	case <-got:
	case <-time.After(probeTimeout):
	}
	if err := sleepCtx(ctx, rand.N(probeJitter)); err != nil {
		return lat, timeouts, err
	}
	t0 := l.now()
	probe.closeByUs()
	return lat, timeouts, wait(base, t0)
}

// newWatchLoad makes the client slots, dialers and poller of one run.
func newWatchLoad(srv *server, slots, sources int) (*load, error) {
	pl, err := newPoller(slots)
	if err != nil {
		return nil, err
	}
	l := &load{base: time.Now(), srvs: []*server{srv}, clients: make([]client, slots), poller: pl}
	for i := range l.clients {
		l.clients[i].latest.Store(-1)
		l.clients[i].id = int32(i)
		l.clients[i].person = -1
	}
	for s := range sources {
		l.dialers = append(l.dialers, newDialer(net.IPv4(127, 0, 0, byte(2+s))))
	}
	return l, nil
}
