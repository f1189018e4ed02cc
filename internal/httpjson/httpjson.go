// Package httpjson writes the JSON answers of groupflow's own HTTP APIs (the
// admin API and the DLQ API). It imports nothing of groupflow, so any
// package serving HTTP can use it.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write answers with status and v as JSON: Content-Type application/json,
// the value indented by two spaces and followed by a newline. An encoding
// or write error is dropped: the status is already sent, and the client
// sees a truncated body. v is the caller's to bound.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
