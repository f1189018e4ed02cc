package runtime

import "testing"

// TestSourceWindow: the room a topic gets from the window's bounds.
func TestSourceWindow(t *testing.T) {
	for _, c := range []struct {
		name                     string
		maxHeld, maxRunnable     int
		limit, held, own, parked int
		want                     int
	}{
		{"empty", 100, 50, 256, 0, 0, 0, 50},
		{"held bound", 100, 0, 256, 90, 40, 0, 10},
		{"full, own below reserve", 100, 0, 256, 100, 10, 0, TopicReserve - 10},
		{"full, own at reserve", 100, 0, 256, 100, TopicReserve, 0, 0},
		{"runnable bound", 1000, 50, 256, 40, 40, 0, 10},
		{"parked not counted", 1000, 50, 256, 540, 540, 500, 10},
		{"parked, held bound wins", 600, 50, 256, 590, 590, 580, 10},
		{"batch limit", 10000, 0, 256, 0, 0, 0, 256},
		{"no bounds", 0, 0, 64, 5000, 5000, 0, 64},
		{"over (reserve taken elsewhere)", 100, 0, 256, 130, 30, 0, 0},
	} {
		w := newWindow(c.maxHeld, c.maxRunnable, nil)
		if got := w.room(c.limit, c.held, c.own, c.parked); got != c.want {
			t.Errorf("%s: room %d, want %d", c.name, got, c.want)
		}
	}
}
