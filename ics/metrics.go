package ics

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics exports the source's counters: feed requests by result,
// bytes read, 304 answers and skipped events.
func (s *Source) RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(statsCollector{s})
}

type statsCollector struct{ s *Source }

var (
	descRequests    = prometheus.NewDesc("presencegw_ics_requests_total", "Calendar feed requests by result (ok, unchanged, not_modified, skipped, http_4xx, http_5xx, too_large, invalid, network).", []string{"result"}, nil)
	descBytes       = prometheus.NewDesc("presencegw_ics_bytes_total", "Bytes of calendar feed bodies read.", nil, nil)
	descNotModified = prometheus.NewDesc("presencegw_ics_not_modified_total", "Calendar feed requests answered 304 Not Modified.", nil, nil)
	descSkipped     = prometheus.NewDesc("presencegw_ics_events_skipped_total", "Events skipped in parsed calendar feeds (bad times, unknown zones).", nil, nil)
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRequests
	ch <- descBytes
	ch <- descNotModified
	ch <- descSkipped
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for result, n := range st.Requests {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), result)
	}
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descNotModified, prometheus.CounterValue, float64(st.NotModified))
	ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(st.Skipped))
}
