package handlers

import (
	"bytes"
	"io/fs"
	"net/http"
)

// handleDemo serves the demo page, or with ?watch=a,b,c its board view
// (the live counts of those rooms), from the embedded static files.
func handleDemo(static fs.FS) http.HandlerFunc {
	page, board := handlePage(static, "index.html"), handlePage(static, "board.html")
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("watch") {
			board(w, r)
			return
		}
		page(w, r)
	}
}

// handlePage serves one file of the embedded static files as HTML. It gives
// the browser a visitor cookie first, so that its streams, from the first
// one on, count its tabs as one person. The files are built into the
// binary, so the page is read once, here.
func handlePage(static fs.FS, name string) http.HandlerFunc {
	page, err := fs.ReadFile(static, name)
	return func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			writeError(w, http.StatusInternalServerError, "page missing from build")
			return
		}
		setVisitorCookie(w, r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	}
}

// handleScript serves the *.js files of the embedded folder dir as one
// JavaScript file, for any site to load with a script tag (no CORS needed
// for that), cached for a while. The files, in name order, share one
// function scope, so that the script is split into files of a readable
// size without leaking names into the host page. Every page of a site
// that shows a badge loads it, so it is put together once, here.
func handleScript(static fs.FS, dir string) http.HandlerFunc {
	js, ok := joinScripts(static, dir)
	return func(w http.ResponseWriter, r *http.Request) {
		if !ok {
			writeError(w, http.StatusInternalServerError, "script missing from build")
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(js)
	}
}

// joinScripts wraps the *.js files of dir, in name order, in one function
// scope; ok is false if there are none or one cannot be read.
func joinScripts(static fs.FS, dir string) (js []byte, ok bool) {
	names, err := fs.Glob(static, dir+"/*.js")
	if err != nil || len(names) == 0 {
		return nil, false
	}
	var b bytes.Buffer
	b.WriteString("(function () {\n'use strict';\n")
	for _, name := range names {
		part, err := fs.ReadFile(static, name)
		if err != nil {
			return nil, false
		}
		b.Write(part)
		b.WriteString("\n")
	}
	b.WriteString("})();\n")
	return b.Bytes(), true
}
