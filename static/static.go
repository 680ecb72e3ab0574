// Package static holds the demo page, embedded so that the binary serves it
// with no files beside it.
package static

import "embed"

// FS is the page and its assets. A package variable because go:embed only
// fills package variables; nothing writes to it.
//
//go:embed index.html widget.js
var FS embed.FS
