package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presence/presence/auth"
	"github.com/presence/presence/internal/option"
	"github.com/presence/presence/presence"
)

// Delivery timing, fixed by the protocol the receivers rely on.
const (
	// requestTimeout bounds one POST: past it, the try failed.
	requestTimeout = 5 * time.Second
	// batchGap is the least time between two requests of a node, so that a
	// busy node sends at most one a second and a quiet one at once.
	batchGap = time.Second
	// DefaultQueue is how many events wait for delivery, at most, by default.
	DefaultQueue = 10000
	// maxBatch bounds the events of one request, whatever the queue.
	maxBatch = 10000
	// sweepEvery is how often the transitions of dead nodes are looked
	// for, and how often a node that is not the cluster's sender tries to
	// become it.
	sweepEvery = time.Second
	// pollEvery is how often the cluster's sender looks at the outbox for
	// what other nodes told, and renews its lease.
	pollEvery = 200 * time.Millisecond
	// minWake is the least the owner sleeps: changes that settle within it
	// of each other are taken together.
	minWake = 50 * time.Millisecond
)

// Options configures a Notifier. Only URL is required.
type Options struct {
	// URL receives the POSTs: http or https.
	URL string
	// Secret signs every body (X-Presence-Signature); "" sends no signature.
	Secret string
	// Rooms are room-name patterns (the syntax of --private-rooms, see
	// auth.MatchRoom) whose events are sent; none: every room.
	Rooms []string
	// Queue bounds the events waiting for delivery; when full, the oldest
	// go. 0: DefaultQueue.
	Queue int
	// Settle is how long a change must hold before it is told: someone who
	// comes and goes within it is never mentioned. The service passes its
	// grace (or its window if there is no grace).
	Settle time.Duration
	// MinBackoff and MaxBackoff bound the wait between tries of a failed
	// request, doubling from the one to the other: 1s and 5min if zero.
	MinBackoff, MaxBackoff time.Duration
	// Arbiter decides, for a cluster, which node tells each transition;
	// nil: this node alone tells all it sees.
	Arbiter Arbiter
	// Metrics, if set, registers the notifier's metrics.
	Metrics prometheus.Registerer
	// Logger logs drops and failures; nil: discarded.
	Logger *slog.Logger
}

// Arbiter is a store shared by the nodes of a cluster (redis.Backend) that
// turns each node's own transitions into the cluster's, once each, and
// keeps what the cluster has to tell in one outbox, in the order of their
// numbers, that one node at a time delivers: so that a room's events
// arrive in order whichever nodes told them, and when a node dies another
// one tells what it had not.
type Arbiter interface {
	// Claim records this node's transitions, in order, and returns for
	// each, if it is the cluster's transition (a room occupied or a
	// member arrived on no other node, or the last to leave), its number
	// in the cluster's order of transitions told; else 0. Those told are
	// appended to the outbox, which keeps the newest limit: it also
	// returns how many of the oldest that dropped.
	Claim(ctx context.Context, ts []presence.Transition, limit int) (seqs []uint64, dropped int, err error)
	// Orphans ends the presence held by dead nodes and appends to the
	// outbox a member_left per person and a room_vacated per room their
	// end empties; it returns how many of the oldest that dropped.
	Orphans(ctx context.Context, limit int) (dropped int, err error)
	// Next takes or renews this node's lease as the one sender of the
	// cluster, for the node timeout, and, if this node has it and limit
	// is not 0, returns the batch to deliver: the one tried before, by
	// whichever node, under its id, or else a new one of at most limit
	// events from the head of the outbox, named with prefix.
	Next(ctx context.Context, prefix string, limit int) (Batch, error)
	// Delivered removes from the outbox the events numbered up to last.
	Delivered(ctx context.Context, last uint64) error
	// Release gives up the lease, if this node has it: for a node going
	// away, so that another one sends at once.
	Release(ctx context.Context) error
}

// Batch is what Arbiter.Next returns.
type Batch struct {
	// Sender is whether this node has the lease and so delivers.
	Sender bool
	// Waiting is how many events the outbox holds.
	Waiting int
	// ID names the batch, the same on every try by any node.
	ID string
	// Transitions and Seqs are the batch's events, oldest first.
	Transitions []presence.Transition
	Seqs        []uint64
}

// settings are checked Options.
type settings struct {
	Options
	url *url.URL
}

// check fills in the defaults and refuses what cannot work, as
// *option.Errors naming the field.
func (o Options) check() (settings, error) {
	var errs []error
	refuse := func(name, item, problem string) {
		errs = append(errs, &option.Error{Option: name, Item: item, Problem: problem})
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		refuse("URL", o.URL, "is not an http or https URL")
	}
	for _, p := range o.Rooms {
		if err := auth.ValidatePattern(p); err != nil {
			refuse("Rooms", p, fmt.Sprintf("is not a room pattern: %v", err))
		}
	}
	if o.Queue < 0 {
		refuse("Queue", "", fmt.Sprintf("must not be negative, got %d", o.Queue))
	}
	if o.Queue == 0 {
		o.Queue = DefaultQueue
	}
	if o.Settle < 0 {
		refuse("Settle", "", fmt.Sprintf("must not be negative, got %s", o.Settle))
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MinBackoff < 0 || o.MaxBackoff < o.MinBackoff {
		refuse("MaxBackoff", "", fmt.Sprintf("must be at least MinBackoff (%s), got %s", o.MinBackoff, o.MaxBackoff))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return settings{Options: o, url: u}, errors.Join(errs...)
}

// wanted reports whether room's events are sent.
func (s *settings) wanted(room string) bool {
	if len(s.Rooms) == 0 {
		return true
	}
	for _, p := range s.Rooms {
		if auth.MatchRoom(p, room) {
			return true
		}
	}
	return false
}
