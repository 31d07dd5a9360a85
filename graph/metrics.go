package graph

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics exports the source's HTTP counters: requests to Graph
// by status, throttled responses (429/503/504) and requests that gave up.
func (s *Source) RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(statsCollector{s})
}

type statsCollector struct{ s *Source }

var (
	descRequests  = prometheus.NewDesc("presencegw_graph_requests_total", "HTTP requests to Microsoft Graph by status, retries included.", []string{"status"}, nil)
	descThrottled = prometheus.NewDesc("presencegw_graph_throttled_total", "Graph responses with 429, 503 or 504.", nil, nil)
	descFailed    = prometheus.NewDesc("presencegw_graph_failed_total", "Graph requests that failed after retries.", nil, nil)
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRequests
	ch <- descThrottled
	ch <- descFailed
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for status, n := range st.ByStatus {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), strconv.Itoa(status))
	}
	ch <- prometheus.MustNewConstMetric(descThrottled, prometheus.CounterValue, float64(st.Throttled))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(st.Failed))
}
