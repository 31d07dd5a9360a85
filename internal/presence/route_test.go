package presence

import (
	"fmt"
	"strings"
	"testing"
)

// routedFake routes by domain: ews.example.com to "ews" (100 a batch),
// the rest to "graph" (20 a batch, auto-replies 50).
type routedFake struct{ *fakeSource }

func (routedFake) Route(mb string) string {
	if strings.HasSuffix(mb, "@ews.example.com") {
		return "ews"
	}
	return "graph"
}

func (routedFake) RouteBatchSizes(r string) (int, int) {
	if r == "ews" {
		return 100, 50
	}
	return 20, 50
}

// A routed source gets batches of one route each, at that route's size,
// and each route's batches spread over the cycle instead of in a block —
// even though sorting by address interleaves the routes.
func TestSplitByRoute(t *testing.T) {
	var ids []string
	for i := range 250 {
		dom := "online.example.com"
		if i%5 < 2 { // 100 of 250 on premises, interleaved
			dom = "ews.example.com"
		}
		ids = append(ids, fmt.Sprintf("u%03d@%s", i, dom))
	}
	src := routedFake{newFake()}
	batches := split("schedules", src, ids)
	var sizes []string
	seen := map[string]bool{}
	for _, b := range batches {
		r := src.Route(b[0])
		for _, id := range b {
			if src.Route(id) != r {
				t.Fatalf("batch mixes routes: %v", b)
			}
			if seen[id] {
				t.Fatalf("%s in two batches", id)
			}
			seen[id] = true
		}
		sizes = append(sizes, fmt.Sprintf("%s:%d", r, len(b)))
	}
	if len(seen) != len(ids) {
		t.Errorf("%d of %d mailboxes batched", len(seen), len(ids))
	}
	// 100 ews = 1 batch of 100 (one request instead of one per mixed
	// batch); 150 graph = 7×20 + 10. The ews batch sits mid-cycle.
	want := "graph:20 graph:20 graph:20 graph:20 ews:100 graph:20 graph:20 graph:20 graph:10"
	if got := strings.Join(sizes, " "); got != want {
		t.Errorf("batches = %s, want %s", got, want)
	}
	replies := split("autoreplies", src, ids)
	if len(replies) != 5 { // ews 2×50, graph 3×50
		t.Errorf("auto-reply batches = %d, want 5", len(replies))
	}
	// A plain source is cut at its own size, routes or not.
	if got := len(split("schedules", newFake(), ids)); got != 13 {
		t.Errorf("plain source: %d batches, want 13", got)
	}
}

// Refresh batches a routed source the same way.
func TestRefreshRouted(t *testing.T) {
	e, _ := newEngine(t, Options{})
	src := routedFake{newFake()}
	ids := []string{"a@ews.example.com", "b@online.example.com", "c@ews.example.com"}
	e.Track(ids)
	if err := e.Refresh(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	sched, replies := src.calls()
	if got := fmt.Sprint(sched); !strings.Contains(got, "[a@ews.example.com c@ews.example.com]") || len(sched) != 2 {
		t.Errorf("schedule calls = %v", sched)
	}
	if len(replies) != 2 {
		t.Errorf("auto-reply calls = %v", replies)
	}
}
