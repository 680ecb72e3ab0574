package handlers

import (
	"sync"

	"github.com/presence/presence/presence"
)

// A feed carries one room's updates to the room's detached streams
// (detach.go) on this node. Its goroutine waits for the room's next Update,
// as a stream on net/http's path does, and then writes it to every stream
// of the room with writes that never wait. It exists while the room has a
// detached stream: one goroutine per room, not per stream.
type feed struct {
	room    string
	latest  func() *presence.Update // the room's newest Update
	streams []*detached             // guarded by Broadcaster.feedsMu
	stop    chan struct{}           // closed when the last stream left
	snap    []*detached             // the streams of the fan-out under way; the feed goroutine's
}

// fanOutChunk is how many streams one goroutine of a fan-out writes to: a
// big room's fan-out is split over the CPUs, as the goroutines of streams on
// net/http's path would be.
const fanOutChunk = 1024

// attach adds d to the feed of st's room, starting the feed if d is the
// room's first detached stream. It reports false once the broadcaster is
// shutting down.
func (b *Broadcaster) attach(d *detached, st *presence.Stream) bool {
	b.feedsMu.Lock()
	defer b.feedsMu.Unlock()
	if b.feedsShut {
		return false
	}
	f := b.feeds[d.room]
	if f == nil {
		// The room cannot be dropped and made anew while its feed has a
		// stream: a stream leaves its feed before its room (finish).
		f = &feed{room: d.room, latest: st.Latest, stop: make(chan struct{})}
		b.feeds[d.room] = f
		go b.runFeed(f, f.latest())
	}
	d.feed, d.index = f, len(f.streams)
	f.streams = append(f.streams, d)
	return true
}

// detachFeed takes d out of its feed, and stops the feed if d was its
// last stream.
func (b *Broadcaster) detachFeed(d *detached) {
	b.feedsMu.Lock()
	defer b.feedsMu.Unlock()
	f := d.feed
	if f == nil {
		return
	}
	last := len(f.streams) - 1
	f.streams[d.index] = f.streams[last]
	f.streams[d.index].index = d.index
	f.streams[last] = nil
	f.streams = f.streams[:last]
	d.feed = nil
	if last == 0 {
		delete(b.feeds, f.room)
		close(f.stop)
	}
}

// runFeed is a feed's goroutine: from cur on, every Update of the room
// to every stream of the feed, until the feed stops.
func (b *Broadcaster) runFeed(f *feed, cur *presence.Update) {
	for {
		select {
		case <-f.stop:
			return
		case <-cur.Replaced():
		}
		next := f.latest()
		b.feedsMu.Lock()
		if cap(f.snap) > 2*len(f.streams)+fanOutChunk {
			f.snap = nil // the room shrank: let the big slice go
		}
		f.snap = append(f.snap[:0], f.streams...)
		b.feedsMu.Unlock()
		b.fanOut(f.snap, next)
		clear(f.snap) // no stream is kept by the snapshot
		cur = next
	}
}

// fanOut offers next to streams, on goroutines that end with it: so the
// feed's own goroutine, which lives as long as the room, keeps the
// smallest stack, and a big room's writes use every CPU.
func (b *Broadcaster) fanOut(streams []*detached, next *presence.Update) {
	parts := min(b.procs, (len(streams)+fanOutChunk-1)/fanOutChunk)
	var wg sync.WaitGroup
	for i := range parts {
		part := streams[i*len(streams)/parts : (i+1)*len(streams)/parts]
		wg.Go(func() { b.offerAll(part, next) })
	}
	wg.Wait()
}

// offerAll offers next to each of streams, framing in one buffer.
func (b *Broadcaster) offerAll(streams []*detached, next *presence.Update) {
	buf := b.frames.Get().(*[]byte)
	w := newWriteTry()
	delivered := 0
	for _, d := range streams {
		ok, p := d.offer(next, *buf, w)
		*buf = p[:0]
		if ok {
			delivered++
		}
	}
	b.frames.Put(buf)
	b.countDeliveries(delivered)
}

// attachAlone notes d, a detached stream of GET /watch, which is in no
// feed, for the shutdown; it reports false once shutting down.
func (b *Broadcaster) attachAlone(d *detached) bool {
	b.feedsMu.Lock()
	defer b.feedsMu.Unlock()
	if b.feedsShut {
		return false
	}
	b.alone[d] = struct{}{}
	return true
}

// detachAlone forgets d (attachAlone).
func (b *Broadcaster) detachAlone(d *detached) {
	b.feedsMu.Lock()
	delete(b.alone, d)
	b.feedsMu.Unlock()
}

// cutDetached ends every detached stream, for a shutdown, and refuses new
// ones.
func (b *Broadcaster) cutDetached() {
	b.feedsMu.Lock()
	b.feedsShut = true
	var all []*detached
	for _, f := range b.feeds {
		all = append(all, f.streams...)
	}
	for d := range b.alone {
		all = append(all, d)
	}
	b.feedsMu.Unlock()
	for _, d := range all {
		d.cut(reasonShutdown)
	}
}
