package presence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Disconnect names streams for the hub to end, for a ban or a logout: a
// signed-in user's, or a room's.
type Disconnect struct {
	// User is a signed-in user's member ID ("u:" and the user id): every
	// stream of theirs ends, room streams and watches alike.
	User string
	// Room, when User is empty: every stream of the room ends (not the
	// watches that follow it from elsewhere).
	Room string
	// Block, with User, is how long the user's new streams and watches are
	// refused with ErrBlocked; 0: not at all.
	Block time.Duration
}

// MaxBlock is the longest Disconnect.Block: a longer ban belongs to
// whoever issues the user's tokens, which can stop issuing them.
const MaxBlock = 24 * time.Hour

// MaxBlocked bounds the users a hub refuses at once, so that blocks cost
// a bounded map however often the API is called.
const MaxBlocked = 100_000

// Announcer is implemented by a shared backend that carries a Disconnect
// to the other nodes, each of which then ends its own streams
// (Hub.Disconnected). Found by type assertion, as Shared is.
type Announcer interface {
	Announce(ctx context.Context, d Disconnect) error
}

// Ended is what Hub.Disconnect did.
type Ended struct {
	// Streams is how many streams of this node it ended.
	Streams int
	// Told reports whether other nodes were told (a shared backend).
	Told bool
}

// endHandle is the hub's way to end one stream or watch (the End func of
// JoinOptions or WatchOptions). It is in the list of its user, if signed
// in, and of its room, for a room's own stream, from its join to its
// leave, so that the hub's bookkeeping for it goes with it. Under Hub.mu.
type endHandle struct {
	end                func()
	ended              bool // end was called (at most once)
	userPrev, userNext *endHandle
	roomPrev, roomNext *endHandle
	inUser, inRoom     bool
}

// trackLocked puts e in the lists of user ("" for none) and of r (nil for
// none), unless it has no end func.
func (h *Hub) trackLocked(e *endHandle, user string, r *room) {
	if e.end == nil {
		return
	}
	if user != "" {
		if h.users == nil {
			h.users = make(map[string]*endHandle)
		}
		head := h.users[user]
		e.userNext, e.inUser = head, true
		if head != nil {
			head.userPrev = e
		}
		h.users[user] = e
	}
	if r != nil {
		e.roomNext, e.inRoom = r.ends, true
		if r.ends != nil {
			r.ends.roomPrev = e
		}
		r.ends = e
	}
}

// untrackLocked takes e out of the lists trackLocked put it in.
func (h *Hub) untrackLocked(e *endHandle, user string, r *room) {
	if e.inUser {
		if e.userPrev != nil {
			e.userPrev.userNext = e.userNext
		} else if e.userNext != nil {
			h.users[user] = e.userNext
		} else {
			delete(h.users, user)
		}
		if e.userNext != nil {
			e.userNext.userPrev = e.userPrev
		}
		e.userPrev, e.userNext, e.inUser = nil, nil, false
	}
	if e.inRoom {
		if e.roomPrev != nil {
			e.roomPrev.roomNext = e.roomNext
		} else {
			r.ends = e.roomNext
		}
		if e.roomNext != nil {
			e.roomNext.roomPrev = e.roomPrev
		}
		e.roomPrev, e.roomNext, e.inRoom = nil, nil, false
	}
}

// blockedLocked reports whether user's new streams are refused now, and
// forgets a block that is over.
func (h *Hub) blockedLocked(user string) bool {
	until, ok := h.blocked[user]
	if !ok {
		return false
	}
	if time.Now().Before(until) {
		return true
	}
	delete(h.blocked, user)
	return false
}

// blockLocked refuses user's new streams until until, or returns
// ErrBlockLimit if MaxBlocked other users are refused still.
func (h *Hub) blockLocked(user string, until time.Time) error {
	if _, ok := h.blocked[user]; !ok && len(h.blocked) >= MaxBlocked {
		now := time.Now()
		for u, t := range h.blocked {
			if !now.Before(t) {
				delete(h.blocked, u)
			}
		}
		if len(h.blocked) >= MaxBlocked {
			return ErrBlockLimit
		}
	}
	if h.blocked == nil {
		h.blocked = make(map[string]time.Time)
	}
	if until.After(h.blocked[user]) {
		h.blocked[user] = until
	}
	return nil
}

// validate says what is wrong with d, if anything.
func (d Disconnect) validate() error {
	switch {
	case d.User == "" && d.Room == "":
		return errors.New("a disconnect names a user or a room")
	case d.User != "" && d.Room != "":
		return errors.New("a disconnect names a user or a room, not both")
	case d.Room != "" && d.Block != 0:
		return errors.New("only a user's disconnect blocks")
	case d.Block < 0 || d.Block > MaxBlock:
		return fmt.Errorf("a block lasts from 0 to %s, not %s", MaxBlock, d.Block)
	case d.Room != "":
		return ValidateRoom(d.Room)
	}
	return nil
}

// Disconnect ends the streams d names on this node and, with a shared
// backend (Announcer), tells the other nodes to end theirs. The streams
// end as their End funcs make them: the hub calls each at most once,
// without its lock held. A stream ended so leaves at once, without a
// grace: a banned or logged-out person is gone. The error is an invalid
// d (ErrInvalidDisconnect), ErrBlockLimit (the streams are ended all the
// same), or ErrNotTold: the backend could not tell the others.
func (h *Hub) Disconnect(ctx context.Context, d Disconnect) (Ended, error) {
	if err := d.validate(); err != nil {
		return Ended{}, fmt.Errorf("%w: %w", ErrInvalidDisconnect, err)
	}
	n, blockErr := h.disconnect(d)
	a, ok := h.backend.(Announcer)
	if !ok {
		return Ended{Streams: n}, blockErr
	}
	if err := a.Announce(ctx, d); err != nil {
		return Ended{Streams: n}, errors.Join(blockErr, fmt.Errorf("%w: %w", ErrNotTold, err))
	}
	return Ended{Streams: n, Told: true}, blockErr
}

// Disconnected does what d says on this node only: for a Disconnect that
// another node announced. It returns how many streams it ended.
func (h *Hub) Disconnected(d Disconnect) int {
	if d.validate() != nil {
		return 0
	}
	n, _ := h.disconnect(d) // a block past MaxBlocked here is lost: the disconnect is not
	return n
}

// disconnect blocks and collects under the lock, then ends the streams
// without it.
func (h *Hub) disconnect(d Disconnect) (int, error) {
	var ends []func()
	var blockErr error
	h.mu.Lock()
	if d.User != "" {
		if d.Block > 0 {
			blockErr = h.blockLocked(d.User, time.Now().Add(d.Block))
		}
		for e := h.users[d.User]; e != nil; e = e.userNext {
			ends = e.take(ends)
		}
		if h.graceOf[d.User] > 0 { // rarely: then bounded by the rooms
			for _, r := range h.rooms {
				h.endGraceLocked(r, d.User)
			}
		}
	} else if r := h.rooms[d.Room]; r != nil {
		for e := r.ends; e != nil; e = e.roomNext {
			ends = e.take(ends)
		}
		h.endGraceLocked(r, "")
	}
	h.mu.Unlock()
	for _, end := range ends {
		end()
	}
	return len(ends), blockErr
}

// endGraceLocked ends the grace of r's closed streams of the person id
// ("" for everyone's): a person disconnected is gone now, not after the
// grace of a stream that closed before.
func (h *Hub) endGraceLocked(r *room, id string) {
	if id != "" && len(r.ghosts[id]) == 0 {
		return // the common case of a user's disconnect: O(1) a room
	}
	for person, gs := range r.ghosts {
		if id != "" && person != id {
			continue
		}
		delete(r.ghosts, person)
		for _, g := range gs {
			g.timer.Stop() // if it fired already, expire finds it gone
			h.ghostGoneLocked(g)
			h.leftLocked(r, g.member)
		}
	}
	h.idleLocked(r)
}

// take appends e's end func to ends unless it was taken already. Under
// Hub.mu.
func (e *endHandle) take(ends []func()) []func() {
	if e.ended {
		return ends
	}
	e.ended = true
	return append(ends, e.end)
}
