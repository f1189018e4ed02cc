package wixsim

import (
	"fmt"
	"testing"
)

// Query Groups by exact name is answered from a name index: it finds every
// group of that name (names need not be unique) and follows creates,
// renames and deletes; other filters still scan.
func TestQueryGroupsByNameFollowsRenameAndDelete(t *testing.T) {
	e := newEnv(t, Options{Members: -1, Groups: -1})
	byName := func(filter map[string]any) int {
		t.Helper()
		return len(list(e.ok("POST", G+"/groups/query", map[string]any{"query": map[string]any{"filter": filter}}), "groups"))
	}
	eq := func(name string) map[string]any { return map[string]any{"title": map[string]any{"$eq": name}} }
	create := func(name string) string {
		t.Helper()
		return str(e.ok("POST", G+"/groups", map[string]any{"group": map[string]any{"name": name}}), "group", "id")
	}
	a, b := create("Dup"), create("Dup")
	create("Other")
	if n := byName(eq("Dup")); n != 2 {
		t.Fatalf("Dup: %d groups, want 2", n)
	}
	if n := byName(map[string]any{"name": "Dup"}); n != 2 {
		t.Fatalf("name shorthand: %d, want 2", n)
	}
	if n := byName(map[string]any{"title": map[string]any{"$eq": "Dup", "$ne": "Dup"}}); n != 0 {
		t.Fatalf("$eq with $ne: %d, want 0", n)
	}
	e.ok("PATCH", G+"/groups/"+a, map[string]any{"group": map[string]any{"name": "Renamed"}})
	if n, m := byName(eq("Dup")), byName(eq("Renamed")); n != 1 || m != 1 {
		t.Fatalf("after rename: Dup %d, Renamed %d; want 1, 1", n, m)
	}
	e.ok("DELETE", G+"/groups/"+b, nil)
	if n := byName(eq("Dup")); n != 0 {
		t.Fatalf("after delete: Dup %d, want 0", n)
	}
	if got := e.srv.Site(testSite).GroupsByName("Renamed"); len(got) != 1 || got[0].ID != a {
		t.Fatalf("GroupsByName: %v", got)
	}
	if n := byName(map[string]any{"title": map[string]any{"$startsWith": "Re"}}); n != 1 {
		t.Fatalf("startsWith: %d, want 1", n)
	}
}

// BenchmarkQueryGroupByName: the find-by-name query of provision_group on a
// site with many groups; its cost does not grow with the number of groups.
func BenchmarkQueryGroupByName(b *testing.B) {
	for _, groups := range []int{100, 10000} {
		b.Run(fmt.Sprint(groups), func(b *testing.B) {
			st := New(Options{Members: -1, Groups: -1}).Site("bench")
			for i := range groups {
				st.AddGroup(fmt.Sprintf("g %d", i), "")
			}
			filter := map[string]any{"title": map[string]any{"$eq": "absent"}}
			pred, e := compileFilter(filter, groupFilterSpec)
			if e != nil {
				b.Fatal(e)
			}
			st.mu.RLock()
			defer st.mu.RUnlock()
			b.ReportAllocs()
			for b.Loop() {
				pageGroups(st, st.candidates(filter), pred, nil, 100, 0)
			}
		})
	}
}
