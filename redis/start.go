package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ErrRefused is wrapped by Check's error: Redis answered and refused this
// node's credentials, rights or database.
var ErrRefused = errors.New("refused")

// Check makes a first connection and runs, once, what the node will run:
// it logs in, selects the database, calls the scripts and subscribes. A
// Redis that refuses any of it (WRONGPASS, NOAUTH, NOPERM, a database out
// of range) is a configuration error that waiting does not heal: Check
// returns it, wrapping ErrRefused, and the node should not start. A Redis
// that does not answer within ctx is not an error: Check logs it and
// returns nil; Run keeps trying, and Ready stays false until it answers.
func (b *Backend) Check(ctx context.Context) error {
	err := b.check(ctx)
	if err == nil {
		return nil
	}
	if refused(err) {
		b.stats.errs.Add(1)
		return fmt.Errorf("redis at %s %w this node: %w (%s)", b.url, ErrRefused, err, hint(err))
	}
	b.setErr("connect", err)
	return nil
}

// check is Check's calls, in the order that names the first refusal best.
func (b *Backend) check(ctx context.Context) error {
	b.stats.commands.Add(1)
	if err := b.rdb.Ping(ctx).Err(); err != nil { // AUTH and SELECT happen here
		return err
	}
	b.stats.commands.Add(1)
	if err := tickScript.Run(ctx, b.rdb, []string{nodesKey, nodeKey(b.id)},
		b.ttl.Milliseconds(), b.id, 0, (hashTTLFactor * b.ttl).Milliseconds()).Err(); err != nil {
		return err
	}
	b.stats.commands.Add(1)
	if err := snapshotScript.Run(ctx, b.rdb, []string{nodesKey}, nodePrefix).Err(); err != nil {
		return err
	}
	b.stats.commands.Add(1)
	ps := b.rdb.Subscribe(ctx, channel)
	defer ps.Close()
	_, err := ps.Receive(ctx)
	return err
}

// refused reports whether err is Redis refusing this node: its password,
// its user's rights or its database. Only an answer from Redis counts; a
// connection that fails or a busy server (LOADING, READONLY, ...) may heal.
func refused(err error) bool {
	if goredis.IsAuthError(err) || goredis.IsPermissionError(err) {
		return true
	}
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := strings.TrimPrefix(re.Error(), "ERR ")
	for _, p := range []string{
		"DB index is out of range", // SELECT beyond the server's databases
		"invalid DB index",         // older servers
		"AUTH",                     // a password given to a server that has none
		"Client sent AUTH",         // the same, on Redis 5
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// hint says which part of the setting to look at for a refusal.
func hint(err error) string {
	switch {
	case goredis.IsPermissionError(err):
		return "the user needs the keys ~presence:*, the channel &presence:* and the commands its scripts run (simplest: +@all)"
	case goredis.IsAuthError(err):
		return "check the user and password of the URL"
	case strings.Contains(err.Error(), "DB index"):
		return "check the database number at the end of the URL"
	}
	return "check the URL"
}

// redactURL returns the Redis URL s with its password replaced by "xxxxx",
// for logs and errors. It works on strings that do not parse as URLs too
// (a space, a stray '%' or '/' in the password), which is when the password
// would otherwise show: everything before the last '@' is taken as the user
// and password. Without a ':' the whole of it is hidden, since a lone
// userinfo is often a password written without the user's colon.
func redactURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	s = redactQuery(s)
	at := strings.LastIndex(s[start:], "@")
	if at < 0 {
		return s
	}
	userinfo := s[start : start+at]
	user, _, hasPass := strings.Cut(userinfo, ":")
	if !hasPass {
		user = ""
	}
	return s[:start] + user + ":xxxxx" + s[start+at:]
}

// redactQuery hides the values of a URL's query options
// (?password=... is a common mistake, which go-redis refuses, and the
// refusal must not show it): the names stay, so the error still says
// which option was wrong.
func redactQuery(s string) string {
	base, query, ok := strings.Cut(s, "?")
	if !ok {
		return s
	}
	opts := strings.Split(query, "&")
	for i, o := range opts {
		if name, _, ok := strings.Cut(o, "="); ok {
			opts[i] = name + "=xxxxx"
		}
	}
	return base + "?" + strings.Join(opts, "&")
}

// secretsOf returns the forms the password of the Redis URL s may take in
// an error message: as written, unescaped and quoted. See redactURL.
func secretsOf(s string) []string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	at := strings.LastIndex(s[start:], "@")
	if at < 0 {
		return nil
	}
	userinfo := s[start : start+at]
	pass := userinfo
	if _, p, ok := strings.Cut(userinfo, ":"); ok {
		pass = p
	}
	if pass == "" {
		return nil
	}
	out := []string{pass, strings.Trim(strconv.Quote(pass), `"`)}
	if u, err := url.PathUnescape(pass); err == nil {
		out = append(out, u)
	}
	return out
}

// parseURL is goredis.ParseURL with an error that shows the URL without
// its password: url.Parse's errors quote the whole URL.
func parseURL(s string) (*goredis.Options, error) {
	ro, err := goredis.ParseURL(s)
	if err == nil {
		// go-redis takes any port number and leaves it to the dial,
		// which would make a typo look like an unreachable Redis.
		if _, port, err := net.SplitHostPort(ro.Addr); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("redis URL %s: the port must be 1 to 65535", redactURL(s))
			}
		}
		return ro, nil
	}
	// Not wrapped with %w: the cause's text holds the password.
	msg := strings.ReplaceAll(err.Error(), strconv.Quote(s), strconv.Quote(redactURL(s)))
	msg = strings.ReplaceAll(msg, s, redactURL(s))
	secrets := secretsOf(s)
	var ue *url.Error
	if errors.As(err, &ue) && len(secrets) > 0 {
		// url.Parse quotes what it stumbled on (a port, an escape, the URL
		// up to a '#'), which may be a piece of the password: say only
		// what to look at.
		msg = "it does not parse as a URL (in the password, write space / ? # % @ %-escaped)"
	}
	for _, secret := range secrets {
		if strings.Contains(msg, secret) {
			msg = "it does not parse as a URL"
			break
		}
	}
	return nil, fmt.Errorf("redis URL %s: %s", redactURL(s), msg)
}
