package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hub fans presence changes out to the open streams: one subscription to
// the backend, and per mailbox the streams that watch it, so a change
// costs work only for its own watchers. A ring of recent changes lets a
// reconnecting client resume from its Last-Event-ID.
type hub struct {
	// epoch tells this process's event ids from a previous one's.
	epoch   string
	mu      sync.Mutex
	seq     uint64
	ring    []change // the last ringSize changes, oldest first
	watches map[string]map[*stream]struct{}
}

const ringSize = 4096

type change struct {
	seq     uint64
	mailbox string
}

type stream struct {
	ch chan change
	// lost is set when the stream fell behind and changes were dropped:
	// it then sends a fresh snapshot.
	lost bool
}

func newHub() *hub {
	return &hub{epoch: strconv.FormatInt(time.Now().UnixNano(), 36), watches: map[string]map[*stream]struct{}{}}
}

// openStream counts a caller's open streams, refusing more than the
// limit: one client must not hold the server with thousands of them.
func (s *Server) openStream(id string) bool {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams[id] >= s.opts.MaxStreams {
		return false
	}
	s.streams[id]++
	return true
}

func (s *Server) closeStream(id string) {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams[id]--; s.streams[id] <= 0 {
		delete(s.streams, id)
	}
}

// run consumes the backend's changes until the channel closes.
func (h *hub) run(changes <-chan string) {
	for mb := range changes {
		h.mu.Lock()
		h.seq++
		c := change{seq: h.seq, mailbox: mb}
		if len(h.ring) == ringSize {
			copy(h.ring, h.ring[1:])
			h.ring = h.ring[:ringSize-1]
		}
		h.ring = append(h.ring, c)
		for st := range h.watches[mb] {
			select {
			case st.ch <- c:
			default:
				st.lost = true
			}
		}
		h.mu.Unlock()
	}
}

// watch registers st for mailboxes and returns the current sequence and,
// when since is still in the ring, the changes after it among them.
func (h *hub) watch(st *stream, mailboxes []string, since uint64, resume bool) (uint64, []change, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, mb := range mailboxes {
		if h.watches[mb] == nil {
			h.watches[mb] = map[*stream]struct{}{}
		}
		h.watches[mb][st] = struct{}{}
	}
	if !resume || len(h.ring) > 0 && since+1 < h.ring[0].seq || since > h.seq {
		return h.seq, nil, false
	}
	want := map[string]bool{}
	for _, mb := range mailboxes {
		want[mb] = true
	}
	var missed []change
	for _, c := range h.ring {
		if c.seq > since && want[c.mailbox] {
			missed = append(missed, c)
		}
	}
	return h.seq, missed, true
}

func (h *hub) unwatch(st *stream, mailboxes []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, mb := range mailboxes {
		delete(h.watches[mb], st)
		if len(h.watches[mb]) == 0 {
			delete(h.watches, mb)
		}
	}
}

func (h *hub) takeLost(st *stream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	lost := st.lost
	st.lost = false
	return lost
}

// Heartbeat is how often an idle stream sends a comment, so proxies and
// clients see it alive.
var Heartbeat = 15 * time.Second

// getStream is GET /api/v1/presence/stream?email=A&email=B: Server-Sent
// Events, a "presence" event per address first (or, resuming with
// Last-Event-ID, only what changed since), then one per change.
func (s *Server) getStream(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r)
	emails := r.URL.Query()["email"]
	switch {
	case len(emails) == 0:
		writeError(w, http.StatusBadRequest, "bad_request", "give at least one email parameter")
		return
	case len(emails) > s.opts.MaxBatch:
		writeError(w, http.StatusRequestEntityTooLarge, "too_many", fmt.Sprintf("at most %d addresses per stream", s.opts.MaxBatch))
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "no_streaming", "streaming is not supported here")
		return
	}
	byMailbox := map[string][]string{}
	var mailboxes []string
	for _, e := range emails {
		entry := s.backend.Lookup(e)
		if entry.Status == Invalid {
			writeError(w, http.StatusBadRequest, "invalid_address", entry.Err)
			return
		}
		if entry.Mailbox != "" {
			if byMailbox[entry.Mailbox] == nil {
				mailboxes = append(mailboxes, entry.Mailbox)
			}
			byMailbox[entry.Mailbox] = append(byMailbox[entry.Mailbox], e)
		}
	}
	// Event ids are "EPOCH-SEQ": an id from before a restart (another
	// epoch) cannot resume, it gets a fresh snapshot.
	var since uint64
	resume := false
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		epoch, seq, ok := strings.Cut(id, "-")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "Last-Event-ID must be an event id this server sent")
			return
		}
		since, resume = n, epoch == s.hub.epoch
	}
	if !s.openStream(c.ID) {
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "too_many_streams", fmt.Sprintf("at most %d open streams per caller", s.opts.MaxStreams))
		return
	}
	defer s.closeStream(c.ID)
	rc := http.NewResponseController(w)
	st := &stream{ch: make(chan change, 64)}
	seq, missed, resumed := s.hub.watch(st, mailboxes, since, resume)
	defer s.hub.unwatch(st, mailboxes)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A client that stops reading is dropped, not waited for: every write
	// must go out within two heartbeats.
	deadline := func() bool {
		err := rc.SetWriteDeadline(time.Now().Add(2 * Heartbeat))
		return err == nil || errors.Is(err, http.ErrNotSupported)
	}
	send := func(seq uint64, email string) bool {
		out, _ := render(s.backend.Lookup(email), c)
		data, _ := json.Marshal(out)
		if !deadline() {
			return false
		}
		_, err := fmt.Fprintf(w, "id: %s-%d\nevent: presence\ndata: %s\n\n", s.hub.epoch, seq, data)
		return err == nil
	}
	snapshot := func(seq uint64) bool {
		for _, e := range emails {
			if !send(seq, e) {
				return false
			}
		}
		return true
	}
	if resumed {
		for _, ch := range missed {
			for _, e := range byMailbox[ch.mailbox] {
				if !send(ch.seq, e) {
					return
				}
			}
		}
		if len(missed) == 0 {
			// Nothing missed: a comment carries the stream on.
			fmt.Fprintf(w, ": resumed at %s-%d\n\n", s.hub.epoch, seq)
		}
	} else if !snapshot(seq) {
		return
	}
	flusher.Flush()
	beat := time.NewTicker(Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ch := <-st.ch:
			if s.hub.takeLost(st) {
				if !snapshot(ch.seq) {
					return
				}
			} else {
				for _, e := range byMailbox[ch.mailbox] {
					if !send(ch.seq, e) {
						return
					}
				}
			}
		case <-beat.C:
			if !deadline() {
				return
			}
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}
