package handlers

import (
	"bytes"
	"context"

	"github.com/presence/presence/presence"
)

// streamStart is how a stream begins.
type streamStart struct {
	first     []byte           // the retry field and the first events
	sent      presence.Events  // the data of the first events
	from      *presence.Update // the room's latest update as of the join
	members   bool             // the stream follows the room's members
	memberSeq uint64           // the publish its first member list is as of
	expiry    expiry           // when a signed-in stream is warned and ends; zero for others
	watch     *presence.Watch  // the rooms the stream watches (?watch=); nil if none
}

// follow sends start.first, then the room's updates, to one stream whose
// headers went out, until ctx ends or a write fails; it returns that
// write's error. It holds the room's latest update and waits for the next
// to replace it, then writes whatever is newest: a slow stream skips stale
// counts instead of queueing them, and a stalled one blocks only itself,
// until its write deadline. Per stream it costs no goroutine or buffer
// beyond the handler's own.
func (b *Broadcaster) follow(ctx context.Context, out *streamWriter, st *presence.Stream, start streamStart) error {
	if err := sendFirst(out, start.first, b.metrics); err != nil {
		return err
	}
	cur := start.from
	sent := start.sent
	memberSeq := start.memberSeq // the last publish before the stream's member list
	whole := true                // the next member data must be the whole list
	done := ctx.Done()
	warn, stopWarn := start.expiry.warning() // nil unless signed in
	defer stopWarn()
	var wake <-chan struct{} // nil unless the stream watches rooms
	if start.watch != nil {
		wake = start.watch.Wake()
	}
	for {
		select {
		case <-done:
			return nil
		case <-wake:
			b.writeWatched(out, start.watch)
			if err := out.flush(); err != nil {
				return err
			}
			continue
		case <-cur.Replaced():
		case <-warn:
			warn = nil
			if err := start.expiry.warn(out); err != nil {
				return err
			}
			continue
		}
		next := st.Latest()
		wrote := false
		if next.Seq != cur.Seq {
			members := start.members && next.Seq > memberSeq && next.Tracked
			// A publish that says what the stream was last told (the
			// publish of its own join, which its first events already
			// counted) is not sent again.
			if members || !bytes.Equal(next.Events.Count, sent.Count) || !bytes.Equal(next.Events.Presence, sent.Presence) {
				// Written from here, not from a helper, so that the
				// write's deep path adds to no more frames than it must.
				buf := b.frame(next, members, next.Seq == memberSeq+1 && !whole)
				out.write(*buf)
				b.frames.Put(buf)
				sent, wrote = next.Events, true
			}
			if members {
				memberSeq, whole = next.Seq, false
			}
		}
		if next.Heartbeats != cur.Heartbeats {
			out.write(heartbeatLine)
		}
		if err := out.flush(); err != nil {
			return err
		}
		if next.Seq != cur.Seq {
			st.Delivered(next.Seq)
		}
		if wrote {
			b.metrics.deliveries.Inc()
		}
		cur = next
	}
}

// frame frames u's count events and, with members, who joined and left
// (delta) or, after the stream's own list or a missed publish, everyone
// again, in a buffer of b.frames: the caller writes it and puts it back.
func (b *Broadcaster) frame(u *presence.Update, members, delta bool) *[]byte {
	buf := b.frames.Get().(*[]byte)
	p := appendCounts((*buf)[:0], u)
	switch {
	case members && delta:
		p = appendMemberEvents(p, u)
	case members:
		p = appendEvent(p, eventPresence, u.Events.Members)
	}
	*buf = p
	return buf
}

// sendFirst writes a stream's first bytes (the retry field and its first
// count). That count times no fan-out, so it is counted as a delivery here
// and not reported to the hub.
func sendFirst(out *streamWriter, first []byte, m *Metrics) error {
	// The first flush also writes the response headers, net/http's deepest
	// path (chunkWriter.writeHeader alone takes a 2.8 KiB frame). Run on the
	// stream's own goroutine it would grow that stack from 8 to 16 KiB for
	// the stream's whole life; run on a goroutine that ends here, the growth
	// goes with it.
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		out.write(first)
		err = out.flush()
	}()
	<-done
	if err != nil {
		return err
	}
	m.deliveries.Inc()
	return nil
}
