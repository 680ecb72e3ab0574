package handlers

import (
	"io/fs"
	"net/http"
)

// handlePage serves one file of the embedded static files as HTML.
func handlePage(static fs.FS, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, err := fs.ReadFile(static, name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "page missing from build")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	}
}
