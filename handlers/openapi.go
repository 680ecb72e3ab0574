package handlers

import (
	_ "embed" // the OpenAPI document
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every route of NewRouter, checked
// against the router by a test (openapi_test.go), so that neither drifts
// from the other.
//
//go:embed openapi.json
var openAPI []byte

// handleOpenAPI serves GET /api/openapi.json.
func handleOpenAPI() http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(openAPI)
	}
}
