package wix

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cannedTransport answers every request with the body registered for the
// path's last segment, without a socket.
type cannedTransport map[string]string

func (t cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	p := r.URL.Path
	body := t[p[strings.LastIndexByte(p, '/')+1:]]
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: r}, nil
}

// BenchmarkProvisionCalls is the client's own cost of the four calls of a
// one-person provision_group (Query Groups, Create Group, Query Members,
// Add Group Members) with Wix answered in memory.
func BenchmarkProvisionCalls(b *testing.B) {
	rt := cannedTransport{
		"query":   `{"groups":[],"members":[{"id":"m1","loginEmail":"ann@example.com","status":"APPROVED"}],"metadata":{"count":0,"offset":0,"total":0}}`,
		"groups":  `{"group":{"id":"g1","name":"G","ownerId":"o1","privacyStatus":"PUBLIC","membersCount":1,"createdDate":"2026-12-02T04:25:45.227Z"}}`,
		"members": `{"members":[{"joinedDate":"2026-12-02T04:25:45.228Z","memberId":"m1","role":{"value":"MEMBER"}}]}`,
	}
	c := New(Config{BaseURL: "https://www.wixapis.com", RequestsPerMinute: 1e9, Burst: 1e6, HTTPClient: &http.Client{Transport: rt}})
	if err := c.AddSite("s1", Credentials{APIKey: "k"}); err != nil {
		b.Fatal(err)
	}
	s, _ := c.Site("s1")
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := s.QueryGroups(ctx, Query{Filter: map[string]any{"title": map[string]any{"$eq": "G"}}, Paging: &Paging{Limit: 100}}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.CreateGroup(ctx, Group{Name: "G"}, ""); err != nil {
			b.Fatal(err)
		}
		if _, err := s.QueryMembers(ctx, MembersQuery{Filter: map[string]any{"loginEmail": map[string]any{"$in": []string{"ann@example.com"}}}, Paging: &Paging{Limit: 100}, Fieldsets: []string{"EXTENDED"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.AddGroupMembers(ctx, "g1", []string{"m1"}); err != nil {
			b.Fatal(err)
		}
	}
	// On a shared machine wall time says little; the process's CPU time does.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
