package handlers

import (
	"bytes"
	"context"

	"github.com/presence/presence/presence"
)

// streamStart is how a stream begins.
type streamStart struct {
	first  []byte          // the retry field and the first events
	fs     followState     // what first tells the stream
	expiry expiry          // when a signed-in stream is warned and ends; zero for others
	watch  *presence.Watch // the rooms the stream watches (?watch=); nil if none
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
	fs := start.fs
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
		case <-fs.cur.Replaced():
		case <-warn:
			warn = nil
			if err := start.expiry.warn(out); err != nil {
				return err
			}
			continue
		}
		// Framed here and written from here, not from a helper that
		// writes, so that the write's deep path adds to no more frames
		// than it must.
		buf := b.frames.Get().(*[]byte)
		p, seq, wrote := b.catchUp((*buf)[:0], &fs, st.Latest())
		if len(p) > 0 {
			out.write(p)
		}
		*buf = p
		b.frames.Put(buf)
		if err := out.flush(); err != nil {
			return err
		}
		if seq != 0 {
			st.Delivered(seq)
		}
		if wrote {
			b.metrics.deliveries.Inc()
		}
	}
}

// followState is what one stream was last told: the Update it is at, the
// count events it got, and where its member data stands.
type followState struct {
	cur       *presence.Update
	sentCount []byte // the data of the last count events the stream got
	sentPres  []byte
	members   bool   // the stream follows the room's members
	memberSeq uint64 // the last publish before the stream's member list, or the last it got members of
	whole     bool   // the next member data must be the whole list
}

// catchUp appends to p what a stream at s must be sent to be at next (the
// room's latest Update), and moves s there. It returns the bytes, the
// publish to report as delivered once they are written (0: none), and
// whether they hold a count event (a delivery). A slow stream skips stale
// counts: it goes from what it was told straight to the newest.
func (b *Broadcaster) catchUp(p []byte, s *followState, next *presence.Update) ([]byte, uint64, bool) {
	cur := s.cur
	s.cur = next
	var seq uint64
	wrote := false
	if next.Seq != cur.Seq {
		seq = next.Seq
		members := s.members && next.Seq > s.memberSeq && next.Tracked
		// A publish that says what the stream was last told (the
		// publish of its own join, which its first events already
		// counted) is not sent again.
		if members || !bytes.Equal(next.Events.Count, s.sentCount) || !bytes.Equal(next.Events.Presence, s.sentPres) {
			p = b.frame(p, next, members, next.Seq == s.memberSeq+1 && !s.whole)
			s.sentCount, s.sentPres, wrote = next.Events.Count, next.Events.Presence, true
		}
		if members {
			s.memberSeq, s.whole = next.Seq, false
		}
	}
	if next.Heartbeats != cur.Heartbeats {
		p = append(p, heartbeatLine...)
	}
	return p, seq, wrote
}

// frame appends u's count events and, with members, who joined and left
// (delta) or, after the stream's own list or a missed publish, everyone
// again.
func (b *Broadcaster) frame(p []byte, u *presence.Update, members, delta bool) []byte {
	p = appendCounts(p, u)
	switch {
	case members && delta:
		p = appendMemberEvents(p, u)
	case members:
		p = appendEvent(p, eventPresence, u.Events.Members)
	}
	return p
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
