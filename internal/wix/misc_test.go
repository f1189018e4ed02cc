package wix

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestCredentialsRedacted(t *testing.T) {
	creds := []Credentials{{APIKey: "IST.topsecret"}, {AppID: "app-1", AppSecret: "topsecret", InstanceID: "inst-1"}}
	for _, c := range creds {
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c))
		}
		outs = append(outs, c.String(), c.GoString(), fmt.Sprint(struct{ C Credentials }{c}))
		j, _ := json.Marshal(c)
		outs = append(outs, string(j))
		var buf bytes.Buffer
		logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel))
		logger.Info("creds", zap.Any("a", c), zap.Reflect("b", c), zap.Stringer("c", c), zap.Object("d", c))
		outs = append(outs, buf.String())
		for _, o := range outs {
			if strings.Contains(o, "topsecret") {
				t.Errorf("secret leaked: %s", o)
			}
		}
		if !strings.Contains(c.String(), "[REDACTED]") {
			t.Errorf("String() = %s", c.String())
		}
	}
}

func TestChunk(t *testing.T) {
	tests := []struct {
		n    int
		in   []int
		want string
	}{
		{3, nil, "[]"},
		{3, []int{1, 2}, "[[1 2]]"},
		{2, []int{1, 2, 3, 4, 5}, "[[1 2] [3 4] [5]]"},
		{2, []int{1, 2, 3, 4}, "[[1 2] [3 4]]"},
		{0, []int{1, 2, 3}, "[[1 2 3]]"},
	}
	for _, tt := range tests {
		got := Chunk(tt.in, tt.n)
		if fmt.Sprint(got) != tt.want {
			t.Errorf("Chunk(%v, %d) = %v, want %s", tt.in, tt.n, got, tt.want)
		}
	}
	s := []int{1, 2, 3, 4}
	c := Chunk(s, 2)
	_ = append(c[0], 99)
	if s[2] != 3 {
		t.Error("appending to a chunk overwrote the next one")
	}
}

// memberServer serves a group of n members, reporting total (or not).
func memberServer(t *testing.T, n int, withTotal bool) *fakeWix {
	return newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		var off, lim int
		if r.Method == http.MethodGet {
			fmt.Sscan(r.URL.Query().Get("offset"), &off)
			fmt.Sscan(r.URL.Query().Get("limit"), &lim)
		} else {
			var body struct{ Query Query }
			_ = json.NewDecoder(r.Body).Decode(&body)
			off, lim = body.Query.Paging.Offset, body.Query.Paging.Limit
		}
		var items []string
		for i := off; i < min(off+lim, n); i++ {
			items = append(items, fmt.Sprintf(`{"memberId":"m%d","id":"g%d"}`, i, i))
		}
		meta := fmt.Sprintf(`{"count":%d,"offset":%d}`, len(items), off)
		if withTotal {
			meta = fmt.Sprintf(`{"count":%d,"offset":%d,"total":%d}`, len(items), off, n)
		}
		list := "[" + strings.Join(items, ",") + "]"
		replyJSON(w, 200, fmt.Appendf(nil, `{"members":%s,"groups":%s,"metadata":%s}`, list, list, meta))
	})
}

func TestPageIterators(t *testing.T) {
	tests := []struct {
		name      string
		n, start  int
		withTotal bool
		groups    bool
		wantItems int
		wantReqs  int
	}{
		{name: "members short last page", n: 250, wantItems: 250, wantReqs: 3, withTotal: true},
		{name: "members exact multiple with total", n: 200, wantItems: 200, wantReqs: 2, withTotal: true},
		{name: "members exact multiple without total", n: 200, wantItems: 200, wantReqs: 3},
		{name: "members from offset", n: 250, start: 150, wantItems: 100, wantReqs: 1, withTotal: true},
		{name: "members from offset, two pages", n: 250, start: 100, wantItems: 150, wantReqs: 2, withTotal: true},
		{name: "members empty", n: 0, wantItems: 0, wantReqs: 1},
		{name: "groups", n: 120, groups: true, wantItems: 120, wantReqs: 2, withTotal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := memberServer(t, tt.n, tt.withTotal)
			s := apiKeySite(t, testClient(t, f.srv.URL, nil))
			got := 0
			if tt.groups {
				for p, err := range s.GroupPages(context.Background(), Query{}) {
					if err != nil {
						t.Fatal(err)
					}
					got += len(p.Groups)
				}
			} else {
				for p, err := range s.GroupMemberPages(context.Background(), "g", tt.start) {
					if err != nil {
						t.Fatal(err)
					}
					got += len(p.Members)
				}
			}
			if got != tt.wantItems || len(f.requests()) != tt.wantReqs {
				t.Errorf("items %d, requests %d; want %d, %d", got, len(f.requests()), tt.wantItems, tt.wantReqs)
			}
		})
	}
	t.Run("consumer stops early", func(t *testing.T) {
		f := memberServer(t, 1000, true)
		s := apiKeySite(t, testClient(t, f.srv.URL, nil))
		for range s.GroupMemberPages(context.Background(), "g", 0) {
			break
		}
		if len(f.requests()) != 1 {
			t.Errorf("requests = %d, want 1", len(f.requests()))
		}
	})
	t.Run("error is yielded and stops", func(t *testing.T) {
		f := newFakeWix(t, statusSeq("", 404))
		s := apiKeySite(t, testClient(t, f.srv.URL, nil))
		var errs int
		for p, err := range s.GroupMemberPages(context.Background(), "g", 0) {
			if err == nil || p != nil || !IsNotFound(err) {
				t.Fatalf("p %v err %v", p, err)
			}
			errs++
		}
		if errs != 1 {
			t.Errorf("errors yielded = %d", errs)
		}
	})
}

func TestMetrics(t *testing.T) {
	f := newFakeWix(t, statusSeq(`{"group":{"id":"g1"}}`, 429, 200))
	reg := prometheus.NewRegistry()
	c := testClient(t, f.srv.URL, func(cfg *Config) { cfg.Registerer = reg })
	_ = New(Config{Registerer: reg}) // a second client on the same registry must not panic
	if err := c.AddSiteWithLimiter(testSite, Credentials{APIKey: testKey}, &fakeLimiter{}); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Site(testSite)
	if _, err := s.GetGroup(context.Background(), "g1"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "," + lp.GetName() + "=" + lp.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"groupflow_wix_requests_total,endpoint=groups.get,site=" + testSite + ",status=429": 1,
		"groupflow_wix_requests_total,endpoint=groups.get,site=" + testSite + ",status=200": 1,
		"groupflow_wix_throttled_total,site=" + testSite:                                    1,
		"groupflow_wix_request_duration_seconds,endpoint=groups.get":                        2,
		"groupflow_wix_limiter_wait_seconds":                                                2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metrics\n got %v\nwant %v", got, want)
	}
}

// MorePages: a counted total decides; a short page ends the paging only
// without one. A Wix serving 50 a page of 120 members was read for one page,
// and the 70 others were never seen.
func TestMorePages(t *testing.T) {
	for _, c := range []struct {
		got, limit, next int
		m                PagingMetadata
		want             bool
	}{
		{50, 100, 50, PagingMetadata{Total: 120}, true},   // short page, more counted
		{20, 100, 120, PagingMetadata{Total: 120}, false}, // the total reached
		{100, 100, 100, PagingMetadata{Total: 100}, false},
		{100, 100, 100, PagingMetadata{}, true},                     // full page, no total
		{50, 100, 50, PagingMetadata{}, false},                      // short page, no total
		{100, 100, 100, PagingMetadata{TooManyToCount: true}, true}, // full page, too many to count
		{50, 100, 50, PagingMetadata{TooManyToCount: true, Total: 1000}, false},
		{0, 100, 50, PagingMetadata{Total: 120}, false}, // an empty page ends it
	} {
		if got := MorePages(c.got, c.limit, c.next, c.m); got != c.want {
			t.Errorf("MorePages(%d, %d, %d, %+v) = %v, want %v", c.got, c.limit, c.next, c.m, got, c.want)
		}
	}
}
