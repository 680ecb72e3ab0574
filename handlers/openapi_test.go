package handlers

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// The OpenAPI document names every route and method of the real router,
// and nothing else: a route added, moved or dropped without the document,
// or the other way round, fails here.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	router, _ := newTestRouter(t)
	routes, ok := router.(chi.Routes)
	if !ok {
		t.Fatalf("NewRouter returned a %T, not chi routes", router)
	}
	var served []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, item := range doc.Paths {
		for method, op := range item {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			checkPathParams(t, method, path, op)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	for _, r := range served {
		if _, found := slices.BinarySearch(documented, r); !found {
			t.Errorf("%s is served but not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if _, found := slices.BinarySearch(served, d); !found {
			t.Errorf("%s is in openapi.json but not served", d)
		}
	}
	if len(served) < 30 {
		t.Errorf("only %d routes walked: %v", len(served), served)
	}
}

// checkPathParams checks that an operation declares each {parameter} of
// its path, inline or by reference.
func checkPathParams(t *testing.T, method, path string, op json.RawMessage) {
	t.Helper()
	var o struct {
		Parameters []openAPIParam `json:"parameters"`
	}
	if err := json.Unmarshal(op, &o); err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return
	}
	for _, seg := range strings.Split(path, "/") {
		name, ok := strings.CutPrefix(seg, "{")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, "}")
		if !slices.ContainsFunc(o.Parameters, func(p openAPIParam) bool {
			return p.Name == name && p.In == "path" || p.Ref == "#/components/parameters/"+name
		}) {
			t.Errorf("%s %s does not declare its path parameter %s", method, path, name)
		}
	}
}

// openAPIParam is a parameter of an operation, or a reference to one.
type openAPIParam struct {
	Name string `json:"name"`
	In   string `json:"in"`
	Ref  string `json:"$ref"`
}
