package handlers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// /widget.js is the widget's parts, in name order, in one function scope;
// / is the demo page, and /?watch= its board view.
func TestPageAndScriptFiles(t *testing.T) {
	static := fstest.MapFS{
		"index.html":   {Data: []byte("demo")},
		"board.html":   {Data: []byte("board")},
		"widget/b.js":  {Data: []byte("var second;")},
		"widget/a.js":  {Data: []byte("var first;")},
		"widget/x.css": {Data: []byte("not a part")},
	}
	get := func(h http.Handler, target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec.Code, rec.Body.String()
	}
	code, js := get(handleScript(static, "widget"), "/widget.js")
	want := "(function () {\n'use strict';\nvar first;\nvar second;\n})();\n"
	if code != 200 || js != want {
		t.Errorf("the script: %d %q, want 200 %q", code, js, want)
	}
	if code, body := get(handleScript(static, "nothing"), "/widget.js"); code != 500 || !strings.Contains(body, "missing") {
		t.Errorf("a script with no parts: %d %s, want 500", code, body)
	}
	for target, page := range map[string]string{"/": "demo", "/?room=a": "demo", "/?watch=a,b": "board", "/?watch=": "board"} {
		if code, body := get(handleDemo(static), target); code != 200 || body != page {
			t.Errorf("GET %s: %d %q, want the %s page", target, code, body, page)
		}
	}
}
