package auth

import (
	"errors"
	"path"
	"testing"
)

func TestMatchRoom(t *testing.T) {
	cases := []struct {
		pattern, room string
		want          bool
	}{
		{"docs-*", "docs-intro", true},
		{"docs-*", "docs-", true},
		{"docs-*", "blog", false},
		{"docs-*", "my-docs-intro", false},
		{"team-?", "team-a", true},
		{"team-?", "team-", false},
		{"team-?", "team-ab", false},
		{"[ab]*", "alpha", true},
		{"[ab]*", "beta", true},
		{"[ab]*", "gamma", false},
		{"[a-c]?", "c1", true},
		{"[^a]*", "apple", false},
		{"[^a]*", "pear", true},
		{"*", "anything.at_all-1", true},
		{"*", "", true},
		{"lobby", "lobby", true},
		{"lobby", "Lobby", false},
		{"lobby", "lobby2", false},
		{"*-*", "a-b", true},
		{"a\\*", "a*", true},
		{"a\\*", "ab", false},
		{"", "", true},
		{"", "lobby", false},
		// Invalid patterns match nothing, not even what their valid prefix would.
		{"[", "[", false},
		{"[", "", false},
		{"a[", "a", false},
		{"*[", "x", false},
		{"docs-*[", "docs-x", false},
		{"[]", "]", false},
		{"[a-", "a", false},
		{"\\", "\\", false},
		// "[!x]" is not negation to path.Match (it is a class of '!' and
		// 'x'): it matches nothing, rather than open staff-x and close
		// staff-a. "[^x]" is negation.
		{"staff-[!x]", "staff-x", false},
		{"staff-[!x]", "staff-a", false},
		{"staff-[!x]", "staff-!", false},
		{"*[!a-c]*", "xdx", false},
		{"staff-[^x]", "staff-a", true},
		{"staff-[^x]", "staff-x", false},
		{"[a!]", "a", true},    // '!' not first is a literal, as in a shell
		{"[^!]", "a", true},    // so is '!' after '^'
		{"\\[!x]", "a", false}, // an escaped '[' opens no class
	}
	for _, c := range cases {
		if got := MatchRoom(c.pattern, c.room); got != c.want {
			t.Errorf("MatchRoom(%q, %q) = %v, want %v", c.pattern, c.room, got, c.want)
		}
		if got := (Claims{Rooms: []string{"zzz-never", c.pattern}}).Allows(c.room); got != c.want {
			t.Errorf("Allows(%q) with rooms %q = %v, want %v", c.room, c.pattern, got, c.want)
		}
	}

	if !(Claims{}).Allows("blog") {
		t.Error("nil Rooms must allow every room")
	}
	if (Claims{Rooms: []string{}}).Allows("blog") {
		t.Error("empty Rooms must allow no room")
	}
	if (Claims{Rooms: []string{"docs-*", "team-?"}}).Allows("blog") {
		t.Error("blog must not match docs-* or team-?")
	}
	if !(Claims{Rooms: []string{"docs-*", "team-?"}}).Allows("team-x") {
		t.Error("team-x must match team-?")
	}
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{"", "*", "**", "lobby", "docs-*", "team-?", "[ab]*", "[^a]", "[a-z]*", "a\\*", "[^x]", "[a!]", "[^!]", "\\[!x]", "[\\!]"} {
		if err := ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"[", "a[", "*[", "docs-*[", "[]", "[a-", "[z-", "\\", "a\\", "[\\", "x*y*[", "staff-[!x]", "[!]", "*[!a-c]*", "[^a][!b]", "[!x"} {
		if err := ValidatePattern(p); !errors.Is(err, path.ErrBadPattern) {
			t.Errorf("ValidatePattern(%q) = %v, want a path.ErrBadPattern", p, err)
		}
	}
}
