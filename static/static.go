// Package static holds the demo page, its board view and the widget,
// embedded so that the binary serves them with no files beside it.
package static

import "embed"

// FS is the pages and the widget's parts (widget/*.js, served as one
// /widget.js). A package variable because go:embed only fills package
// variables; nothing writes to it.
//
//go:embed index.html board.html widget/*.js
var FS embed.FS
