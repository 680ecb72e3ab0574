package presence

import (
	"errors"
	"fmt"
	"time"

	"github.com/presence/presence/internal/option"
)

// HubOptions configures a Hub. Start from DefaultHubOptions: NewHub
// refuses a zero where zero would mean nothing (a window, a bound of 0).
type HubOptions struct {
	// Window is the coalescing window: a room publishes at most one count
	// per window, and a change in a quiet room is published at once.
	Window time.Duration
	// MaxStreams caps the streams this node holds.
	MaxStreams int
	// MaxRooms caps the rooms this node holds streams in. When it is
	// reached, a new room takes the place of the room that has held only
	// closed streams in their grace the longest, if any: such rooms never
	// keep out people who are here.
	MaxRooms int
	// Grace is how long a person (a member with an ID) whose stream closed
	// still counts: a stream of the same person within it takes the closed
	// one's place and nothing changes, as on a page refresh. 0: none.
	// Anonymous streams leave at once, and so does a stream that was open
	// less than the grace itself: a grace is earned by being there, so that
	// opening and closing streams cheaply makes no phantom people. Every
	// closed stream still counted at time t was open at t-Grace, so those
	// in their grace never outnumber the streams open one grace before.
	// A stream that takes over a closed one earns its own grace anew.
	Grace time.Duration
	// MaxGracePerSource bounds the closed streams of one source
	// (JoinOptions.Source) in their grace; a stream of a source at the
	// bound leaves at once. 0: no bound. Earning a grace takes a stream
	// held for the grace, so without it one source holding n streams and
	// replacing each by a new made-up person once a grace could show up
	// to 2n people; with it, n plus this bound.
	MaxGracePerSource int
	// MaxPerSource bounds the streams of one source (JoinOptions.Source),
	// open plus closed in their grace; 0: no bound. A person taking over
	// their own closed stream from the same source is never refused.
	MaxPerSource int
	// MaxWatchRoomsPerSource bounds the rooms that watches of one source
	// (WatchOptions.Source) bring into existence, rooms nobody on this node
	// was in or watched, while watchers hold them; 0: no bound. Without it
	// one source could fill the bound of rooms only watchers hold
	// (MaxRooms of them) with made-up names, and keep everyone else from
	// watching a room nobody is in. Watching a room that is held already
	// never counts against it.
	MaxWatchRoomsPerSource int
	// MembersCap bounds the member lists handed out.
	MembersCap int
	// Observer, if set, is told every change of who is in a room on this
	// node, as the backend is told it (see Observer), so that webhooks
	// follow what the streams follow.
	Observer Observer
}

// Observer is told of every stream's member arriving in a room of this
// node (but not of one taking back their own closed stream in its grace)
// and leaving it (after the grace). The hub calls it with its lock held: it
// must be quick, never block and never call the hub. An interface, not a
// func, so that options stay comparable.
type Observer interface {
	Observe(room string, m Member, arrived bool)
}

// DefaultHubOptions are options that work with no configuration: a 100ms
// window, 10,000 streams and rooms, member lists of 100, no grace, no
// per-source bounds of streams, and 1,000 watched rooms brought by one
// source (a tenth of the rooms only watchers may hold).
func DefaultHubOptions() HubOptions {
	return HubOptions{
		Window:                 100 * time.Millisecond,
		MaxStreams:             10000,
		MaxRooms:               10000,
		MaxWatchRoomsPerSource: 1000,
		MembersCap:             100,
	}
}

// validate refuses what means nothing: a window that is not positive, a
// cap below 1, a negative grace or per-source bound (0 is none). Each
// error is an *option.Error naming the field.
func (o HubOptions) validate() error {
	var errs []error
	refuse := func(name, problem string, value any) {
		errs = append(errs, &option.Error{Option: name, Problem: fmt.Sprintf(problem, value)})
	}
	if o.Window <= 0 {
		refuse("Window", "must be positive, got %s", o.Window)
	}
	for _, f := range []struct {
		name  string
		value int
	}{{"MaxStreams", o.MaxStreams}, {"MaxRooms", o.MaxRooms}, {"MembersCap", o.MembersCap}} {
		if f.value < 1 {
			refuse(f.name, "must be at least 1, got %d", f.value)
		}
	}
	if o.Grace < 0 {
		refuse("Grace", "must not be negative, got %s", o.Grace)
	}
	for _, f := range []struct {
		name  string
		value int
	}{{"MaxGracePerSource", o.MaxGracePerSource}, {"MaxPerSource", o.MaxPerSource}, {"MaxWatchRoomsPerSource", o.MaxWatchRoomsPerSource}} {
		if f.value < 0 {
			refuse(f.name, "must not be negative, got %d", f.value)
		}
	}
	return errors.Join(errs...)
}
