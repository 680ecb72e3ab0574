package handlers

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/presence/presence/auth"
	"github.com/presence/presence/internal/option"
)

// Options is what the router needs besides its dependencies. Start from
// DefaultOptions: NewRouter refuses a zero where zero would mean nothing.
type Options struct {
	Stream StreamOptions
	// RoomsLimit is how many rooms GET /api/rooms lists by default, from 1
	// to MaxRoomsLimit.
	RoomsLimit int
	// CORS says which other sites' pages may use the streams and the API.
	CORS CORSOptions
	// Ready is nil once the node's counts are worth serving (with Redis:
	// once it has read the whole cluster), and says otherwise why not, in a
	// few words fit for the public; /readyz answers 503 meanwhile. Nil
	// means always.
	Ready func() error
	// MaxHeaderBytes is the largest request header block answered, at
	// least MinHeaderBytes; larger ones get 431 (see limitHeaders).
	MaxHeaderBytes int
	// APIKey opens the server API (serverapi.go) to a request that sends
	// it as Authorization: Bearer, and every room of GET /api/rooms to it;
	// at least MinAPIKeyLen bytes. "": the server API answers 401.
	APIKey string
}

// MinHeaderBytes is the least Options.MaxHeaderBytes: below it, ordinary
// browser requests would be refused.
const MinHeaderBytes = 1024

// DefaultOptions are options that work with no configuration: retry after
// 3s, cut a stream whose write stalls 4s, watch up to 100 rooms per stream, list 100 rooms, take headers of
// up to 16 KiB, no other site's pages, no trusted proxies, no private
// rooms and no tokens.
func DefaultOptions() Options {
	return Options{
		Stream:         StreamOptions{Retry: 3 * time.Second, WriteTimeout: 4 * time.Second, MaxWatch: 100},
		RoomsLimit:     100,
		MaxHeaderBytes: 16 << 10,
	}
}

// validate refuses options that cannot work, each as an *option.Error that
// names its field, and returns opts ready for use: origins without a
// trailing '/', trusted proxies parsed.
func (opts Options) validate() (Options, error) {
	var errs []error
	refuse := func(name, problem string, args ...any) {
		errs = append(errs, &option.Error{Option: name, Problem: fmt.Sprintf(problem, args...)})
	}
	if opts.Stream.Retry <= 0 {
		refuse("Stream.Retry", "must be positive, got %s", opts.Stream.Retry)
	}
	if opts.Stream.WriteTimeout <= 0 {
		refuse("Stream.WriteTimeout", "must be positive, got %s", opts.Stream.WriteTimeout)
	}
	if opts.Stream.MaxWatch < 1 {
		refuse("Stream.MaxWatch", "must be at least 1, got %d", opts.Stream.MaxWatch)
	}
	if opts.RoomsLimit < 1 || opts.RoomsLimit > MaxRoomsLimit {
		refuse("RoomsLimit", "must be from 1 to %d, got %d", MaxRoomsLimit, opts.RoomsLimit)
	}
	if opts.MaxHeaderBytes < MinHeaderBytes {
		refuse("MaxHeaderBytes", "must be at least %d, got %d", MinHeaderBytes, opts.MaxHeaderBytes)
	}
	if opts.APIKey != "" && len(opts.APIKey) < MinAPIKeyLen {
		refuse("APIKey", "must be at least %d bytes, got %d", MinAPIKeyLen, len(opts.APIKey))
	}
	origins := make([]string, len(opts.CORS.AllowedOrigins))
	for i, o := range opts.CORS.AllowedOrigins {
		o = strings.TrimSuffix(o, "/")
		if u, err := url.Parse(o); o != "*" && (err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "") {
			errs = append(errs, &option.Error{Option: "CORS.AllowedOrigins", Item: o, Problem: "is not an origin such as https://example.com"})
		}
		origins[i] = o
	}
	opts.CORS.AllowedOrigins = origins
	for _, p := range opts.Stream.Identity.Private {
		if err := auth.ValidatePattern(p); err != nil {
			errs = append(errs, &option.Error{Option: "Stream.Identity.Private", Item: p, Problem: "is not a room pattern: " + err.Error()})
		}
	}
	proxies, err := parseTrustedProxies(opts.Stream.TrustedProxies)
	if err != nil {
		errs = append(errs, err)
	}
	opts.Stream.proxies = proxies
	return opts, errors.Join(errs...)
}
