// Package option is how a constructor says which of its options it
// refuses, so that its caller, which knows where each option came from (a
// flag, an environment variable), can name that instead.
package option

import "strconv"

// Error is one option a constructor refuses.
type Error struct {
	// Option names the option as its package does: a field such as
	// "Window" or "CORS.AllowedOrigins", or a parameter such as
	// "heartbeat".
	Option string
	// Item, if not empty, is the item of a list option that is refused.
	Item string
	// Problem says what is wrong, as a phrase that follows the option's
	// name (or the quoted item): "must be positive, got 0s", "is not an
	// origin such as https://example.com".
	Problem string
}

func (e *Error) Error() string { return e.Named(e.Option) }

// Named is the message with name in place of the option's own name.
func (e *Error) Named(name string) string {
	if e.Item != "" {
		return name + ": " + strconv.Quote(e.Item) + " " + e.Problem
	}
	return name + " " + e.Problem
}
