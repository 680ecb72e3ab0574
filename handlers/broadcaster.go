package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/presence/presence/presence"
)

// Stream engines, the values of --engine. See docs/decisions/0001-stream-engine.md.
const (
	// EngineDirect writes each room's latest event from the stream's own
	// handler, woken by the room's publish: the default.
	EngineDirect = "direct"
	// EngineR3labs serves streams with github.com/r3labs/sse/v2, one r3labs
	// stream per room.
	EngineR3labs = "r3labs"
)

// engine delivers rooms' events to their streams. The hub tells it about
// rooms and their counts (presence.Notifier, and the presence.Publisher it
// returns per room); the Broadcaster about heartbeats.
type engine interface {
	presence.Notifier
	// serve sends first, then the room's events, to one stream whose
	// headers went out, until ctx ends or a write fails; it returns that
	// write's error. It calls st.Subscribed once the stream will see every
	// later publish, and st.Delivered for each count event written.
	serve(ctx context.Context, out *streamWriter, r *http.Request, st *presence.Stream, start streamStart) error
	// members reports whether the engine sends member events.
	members() bool
	// heartbeat sends a comment line to every stream of p's room.
	heartbeat(p presence.Publisher)
	// close releases what the engine holds once no stream is left.
	close()
}

// streamStart is how a stream begins.
type streamStart struct {
	first     []byte // the retry field and the first events
	members   bool   // the stream follows the room's members
	memberSeq uint64 // the publish its first member list is as of
	expiry    expiry // when a signed-in stream is warned and ends; zero for others
}

// Broadcaster is the stream side of the service: the presence Hub and the
// engine that carries its counts to the streams.
type Broadcaster struct {
	engine    engine
	hub       *presence.Hub
	heartbeat time.Duration

	closing context.Context // done when streams must end
	close   context.CancelFunc
}

// NewBroadcaster builds the hub over backend and the named engine under it.
func NewBroadcaster(backend presence.Backend, opts presence.HubOptions, engineName string, heartbeat time.Duration, m *Metrics) (*Broadcaster, error) {
	b := &Broadcaster{heartbeat: heartbeat}
	switch engineName {
	case EngineDirect, "":
		b.engine = newDirectEngine(m)
	case EngineR3labs:
		b.engine = newR3labsEngine(m)
	default:
		return nil, fmt.Errorf("unknown stream engine %q (want %s or %s)", engineName, EngineDirect, EngineR3labs)
	}
	hub, err := presence.NewHub(backend, b.engine, opts)
	if err != nil {
		return nil, err
	}
	b.hub = hub
	b.closing, b.close = context.WithCancel(context.Background())
	return b, nil
}

// Hub returns the presence hub the broadcaster serves.
func (b *Broadcaster) Hub() *presence.Hub { return b.hub }

// Run sends a heartbeat comment to every room until ctx is done.
func (b *Broadcaster) Run(ctx context.Context) {
	t := time.NewTicker(b.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, p := range b.hub.Publishers() {
				b.engine.heartbeat(p)
			}
		}
	}
}

// BaseContext is for http.Server.BaseContext: request contexts derived from
// it end when Shutdown starts, and with them every open stream. (One shared
// parent instead of a callback per stream keeps each stream smaller.)
func (b *Broadcaster) BaseContext(net.Listener) context.Context { return b.closing }

// Ready reports whether the broadcaster takes new streams.
func (b *Broadcaster) Ready() bool { return b.closing.Err() == nil }

// Shutdown refuses new streams, ends the open ones so that their clients
// reconnect elsewhere, and waits for their handlers to return or ctx to end.
func (b *Broadcaster) Shutdown(ctx context.Context) error {
	drained := b.hub.Close()
	b.close()
	select {
	case <-drained:
		b.engine.close()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// appendCountEvent appends a "user count" event of count (people) to b:
// the one format both the first event and the direct engine's publishes
// use.
func appendCountEvent(b []byte, count int) []byte {
	b = append(b, "event: user count\ndata: "...)
	b = strconv.AppendInt(b, int64(count), 10)
	return append(b, "\n\n"...)
}

// appendPresenceEvent appends a "presence" event:
// {"room":...,"people":N,"connections":M}, with "members" (and
// "truncated") when members is not nil.
func appendPresenceEvent(b []byte, room string, c presence.Counts, members []presence.MemberInfo, truncated bool) []byte {
	b = append(b, "event: presence\ndata: "...)
	b = appendPresenceData(b, room, c, members, truncated)
	return append(b, "\n\n"...)
}

// appendPresenceData appends a presence event's JSON data.
func appendPresenceData(b []byte, room string, c presence.Counts, members []presence.MemberInfo, truncated bool) []byte {
	b = append(b, "{\"room\":\""...)
	b = append(b, room...) // room names need no escaping
	b = append(b, "\",\"people\":"...)
	b = strconv.AppendInt(b, int64(c.People), 10)
	b = append(b, ",\"connections\":"...)
	b = strconv.AppendInt(b, int64(c.Connections), 10)
	if members != nil {
		b = append(b, ",\"members\":"...)
		b = appendMembers(b, members)
		b = append(b, ",\"truncated\":"...)
		b = strconv.AppendBool(b, truncated)
	}
	return append(b, '}')
}

// appendMemberEvents appends a "join" or "leave" event (kind) per member:
// {"id":...,"name":...}.
func appendMemberEvents(b []byte, kind string, ms []presence.MemberInfo) []byte {
	for _, m := range ms {
		b = append(b, "event: "...)
		b = append(b, kind...)
		b = append(b, "\ndata: "...)
		b = appendMember(b, m)
		b = append(b, "\n\n"...)
	}
	return b
}

func appendMembers(b []byte, ms []presence.MemberInfo) []byte {
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMember(b, m)
	}
	return append(b, ']')
}

// appendMember writes a member as clients see it: the user id without the
// hub's "u:" prefix, and the name if any. JSON escaping keeps names and ids
// on one data line.
func appendMember(b []byte, m presence.MemberInfo) []byte {
	id, _ := json.Marshal(strings.TrimPrefix(m.ID, "u:"))
	b = append(b, "{\"id\":"...)
	b = append(b, id...)
	if m.Name != "" {
		name, _ := json.Marshal(m.Name)
		b = append(b, ",\"name\":"...)
		b = append(b, name...)
	}
	return append(b, '}')
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
