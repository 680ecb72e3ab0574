package handlers

import (
	"io/fs"
	"net/http"
)

// handlePage serves one file of the embedded static files as HTML. It gives
// the browser a visitor cookie first, so that its streams, from the first
// one on, count its tabs as one person.
func handlePage(static fs.FS, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, err := fs.ReadFile(static, name)
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

// handleScript serves one embedded file as JavaScript, for any site to
// load with a script tag (no CORS needed for that), cached for a while.
func handleScript(static fs.FS, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		js, err := fs.ReadFile(static, name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "script missing from build")
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(js)
	}
}
