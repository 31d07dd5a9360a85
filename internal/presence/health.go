package presence

// CalendarRead counts the tracked mailboxes and those whose schedule has
// been read successfully at least once since the engine started. A gateway
// that has tracked mailboxes but never read one (wrong credentials,
// missing permission, an unreachable source) is not ready: its lookups
// would say nothing about calendars. A later outage keeps the facts read
// before (the stale gauge counts them), so readiness does not flap with
// the source.
func (e *Engine) CalendarRead() (tracked, read int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.mailboxes {
		if !m.tracked || m.optOut {
			continue
		}
		tracked++
		if !m.fetched.IsZero() {
			read++
		}
	}
	return tracked, read
}
