package httpjson_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"groupflow/internal/httpjson"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	httpjson.Write(rec, http.StatusNotFound, map[string]string{"error": "no such entry"})
	if rec.Code != http.StatusNotFound {
		t.Errorf("status %d, want 404", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if want := "{\n  \"error\": \"no such entry\"\n}\n"; rec.Body.String() != want {
		t.Errorf("body %q, want %q", rec.Body.String(), want)
	}
}
