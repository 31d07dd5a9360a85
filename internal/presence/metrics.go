package presence

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	tracked, stale, failing prometheus.Gauge
	polls                   *prometheus.CounterVec
	lag                     *prometheus.HistogramVec
	changes                 *prometheus.CounterVec
	dropped                 prometheus.Counter
}

// RegisterMetrics registers the engine's series: mailboxes tracked,
// stale and failing, polls by kind and result, poll lag (how late a batch
// went out against its slot), presence changes by state, and changes a
// slow subscriber lost.
func (e *Engine) RegisterMetrics(reg prometheus.Registerer) error {
	m := &metrics{
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencegw_calendar_mailboxes", Help: "Mailboxes whose calendar is tracked."}),
		stale:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencegw_calendar_stale_mailboxes", Help: "Mailboxes without a successful calendar read for two poll intervals."}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencegw_calendar_failing_mailboxes", Help: "Mailboxes whose last calendar read failed alone (not found, access denied)."}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencegw_calendar_polls_total", Help: "Calendar source calls by kind (schedules, autoreplies) and result."},
			[]string{"kind", "result"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "presencegw_calendar_poll_lag_seconds", Help: "How late a poll batch went out against its slot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"kind"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencegw_presence_changes_total", Help: "Presence changes emitted, by new state."}, []string{"state"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "presencegw_presence_changes_dropped_total", Help: "Changes a subscriber did not take in time."}),
	}
	for _, c := range []prometheus.Collector{m.tracked, m.stale, m.failing, m.polls, m.lag, m.changes, m.dropped} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	e.mu.Lock()
	e.metrics = m
	e.mu.Unlock()
	return nil
}
