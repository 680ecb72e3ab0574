package auth

import (
	"fmt"
	"path"
)

// Allows reports whether the claims let the holder open room: true if Rooms
// is nil, else if any pattern matches.
func (c Claims) Allows(room string) bool {
	if c.Rooms == nil {
		return true
	}
	for _, p := range c.Rooms {
		if MatchRoom(p, room) {
			return true
		}
	}
	return false
}

// MatchRoom reports whether room matches pattern, the whole name. The
// pattern syntax (of --private-rooms and of a token's rooms claim) is
// path.Match's:
//
//   - '*' matches any run of characters, none included (room names have no
//     '/', so it spans the whole name);
//   - '?' matches exactly one character;
//   - '[abc]' and '[a-z]' match one character of the class, '[^abc]' and
//     '[^a-z]' one character not in it;
//   - '\' makes the next character literal ('\*' is a star);
//   - any other character matches itself, case-sensitively.
//
// So "docs-*" matches "docs-intro" and "docs-", not "my-docs-intro". A
// class opened by '!' ("[!x]", negation in shells and .gitignore) is not
// negation to path.Match but a class of '!' and 'x', which would open what
// its author meant to close: ValidatePattern refuses it and here it matches
// nothing. An invalid pattern matches nothing.
func MatchRoom(pattern, room string) bool {
	if bangClass(pattern) {
		return false
	}
	ok, err := path.Match(pattern, room)
	return ok && err == nil
}

// ValidatePattern returns an error for a pattern MatchRoom would not match
// as written: one that path.Match rejects, or one with a class opened by '!'
// (write '[^...]' for a class that excludes). The error says what is wrong,
// not which pattern: its caller names that. The private rooms are checked
// with it when the router is built, and a token whose rooms claim fails it
// is refused with ErrClaims.
func ValidatePattern(pattern string) error {
	// Matching against "" fails at the first literal or class and then
	// path.Match checks the rest of the pattern's syntax; "*" alone or a
	// run of '*' matches "" and is valid.
	if _, err := path.Match(pattern, ""); err != nil {
		return err
	}
	if bangClass(pattern) {
		return fmt.Errorf("%w: a class opened by \"[!\" is not negation here; write \"[^...]\" for a class that excludes", path.ErrBadPattern)
	}
	return nil
}

// bangClass reports whether pattern has a character class whose first
// character is an unescaped '!', read as path.Match reads classes.
func bangClass(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			i++ // the escaped character is a literal
		case '[':
			i++
			if i < len(pattern) && pattern[i] == '!' {
				return true
			}
			if i < len(pattern) && pattern[i] == '^' {
				i++
			}
			// Skip to the class's closing ']'; a ']' right at the start
			// is not one (path.Match refuses an empty class).
			for start := i; i < len(pattern); i++ {
				if pattern[i] == '\\' {
					i++
				} else if pattern[i] == ']' && i > start {
					break
				}
			}
		}
	}
	return false
}
