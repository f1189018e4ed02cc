package wixsim

import "testing"

// BenchmarkSeed100k measures seeding a site with 100,000 members and 50 groups.
func BenchmarkSeed100k(b *testing.B) {
	st := New(Options{Members: -1, Groups: -1}).Site("bench")
	b.ReportAllocs()
	for b.Loop() {
		st.Reset(100000, 50)
	}
}
