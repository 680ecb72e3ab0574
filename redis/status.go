package redis

import (
	"errors"
	"fmt"
	"time"
)

// Public reasons of Ready and Health: short, with no address, user or
// password. The details go to the log.
var (
	errNotRead     = errors.New("redis not read yet")
	errUnreachable = errors.New("redis unreachable")
	errRefused     = errors.New("redis refused this node")
)

// status is whether a node's view of the cluster is current, and what is
// wrong if not. It is guarded by Backend.mu.
type status struct {
	err      error     // why the view is not current; nil if it is
	reason   error     // err in a few words for the public
	current  bool      // the view has been current once: the node is ready
	warned   time.Time // when trouble was last logged; zero: not since it began
	warnedOf error     // the reason then
	since    time.Time // when the trouble began
	subbed   bool      // the subscription is up and confirmed

	resyncAsked bool // a full read is asked for and not yet taken (redis.go)
	resyncing   bool // the resyncer is reading everything
}

// Ready is nil once this node has read every node's shares and listens to
// their changes: before, it knows only its own streams, and a load balancer
// should send clients to nodes that know the whole cluster. Otherwise it
// says why in a few words fit for the public (the details go to the log).
// Once ready, a node stays ready through later outages, serving the last
// known counts (see Health).
func (b *Backend) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status.current {
		return nil
	}
	return b.status.reason
}

// Health implements presence.Shared. Its error is in a few words fit for
// the public ("redis unreachable"), since /readyz shows it; the details
// (addresses, Redis's own words) go to the log.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status.err == nil {
		return nil
	}
	return b.status.reason
}

// setSubscribed records whether the subscription is up and confirmed: the
// view is current only if it is.
func (b *Backend) setSubscribed(up bool) {
	b.mu.Lock()
	b.status.subbed = up
	b.mu.Unlock()
}

// setErr records a failed Redis call; the next successful tick rewrites
// this node's hash and re-reads the others, since anything may have
// happened meanwhile.
//
// It logs the trouble when it begins and again every warnEvery while it
// lasts, not on every retry. A refusal (credentials, rights, database)
// that comes while running, say after an ACL change, is logged as an
// error but does not stop the node: it keeps serving its own streams and
// the last known counts, and heals by itself once Redis takes it again,
// whereas stopping would turn a change in Redis into an outage of every
// node at once.
func (b *Backend) setErr(op string, err error) {
	b.stats.errs.Add(1)
	now := time.Now()
	b.mu.Lock()
	st := &b.status
	if st.err == nil {
		st.since = now
	}
	st.err = fmt.Errorf("redis %s: %w", op, err)
	st.reason = errUnreachable
	if refused(err) {
		st.reason = errRefused
	}
	b.view.full = true
	// A refusal is news even right after a dropped connection was logged;
	// at most one of each per warnEvery, however the calls alternate.
	say := st.warned.IsZero() || now.Sub(st.warned) >= b.warnEvery ||
		st.reason == errRefused && st.warnedOf != errRefused
	if say {
		st.warned, st.warnedOf = now, st.reason
	}
	current, since, reason := st.current, st.since, st.reason
	b.mu.Unlock()
	if !say {
		return
	}
	args := []any{"redis", b.url, "op", op, "err", err, "for", now.Sub(since).Round(time.Second).String()}
	switch {
	case reason == errRefused:
		b.log.Error("redis refuses this node: check --redis-url and the user's rights in Redis; serving this node's streams and the last known counts meanwhile", args...)
	case current:
		b.log.Warn("redis unavailable: serving the last known counts", args...)
	default:
		b.log.Warn("redis unreachable: this node is not ready until it has read the cluster once", args...)
	}
}

// healed is called after a full read of every node's shares: if there was
// trouble and the subscription is back, the view is current again, and the
// node is ready if it was not yet.
func (b *Backend) healed() {
	b.mu.Lock()
	st := &b.status
	healed := st.err != nil && st.subbed
	first := healed && !st.current
	if healed {
		st.err, st.reason, st.current, st.warned = nil, nil, true, time.Time{}
	}
	since := st.since
	b.mu.Unlock()
	after := time.Since(since).Round(time.Millisecond).String()
	switch {
	case first:
		b.log.Info("redis answered: counts are global and current; this node is ready", "redis", b.url, "after", after)
	case healed:
		b.log.Info("redis available again: counts are global and current", "redis", b.url, "after", after)
	}
}
