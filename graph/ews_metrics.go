package graph

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics exports the EWS source's counters: SOAP requests by
// operation, HTTP answers by status, HTTP round trips (NTLM legs
// included), ErrorServerBusy answers and the time spent backing off,
// retries and requests that gave up.
func (s *EWS) RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(ewsCollector{s})
}

type ewsCollector struct{ s *EWS }

var (
	descEWSRequests  = prometheus.NewDesc("presencegw_ews_requests_total", "SOAP requests to Exchange Web Services by operation, retries included.", []string{"operation"}, nil)
	descEWSStatus    = prometheus.NewDesc("presencegw_ews_responses_total", "EWS HTTP answers by status.", []string{"status"}, nil)
	descEWSExchanges = prometheus.NewDesc("presencegw_ews_http_exchanges_total", "HTTP round trips to EWS, NTLM handshake legs included.", nil, nil)
	descEWSBusy      = prometheus.NewDesc("presencegw_ews_server_busy_total", "ErrorServerBusy answers (Exchange throttling).", nil, nil)
	descEWSBackOff   = prometheus.NewDesc("presencegw_ews_backoff_seconds_total", "Time requests were held back for ErrorServerBusy's BackOffMilliseconds.", nil, nil)
	descEWSRetried   = prometheus.NewDesc("presencegw_ews_retried_total", "EWS requests sent again (busy, 5xx, broken connections).", nil, nil)
	descEWSFailed    = prometheus.NewDesc("presencegw_ews_failed_total", "EWS requests that failed, after retries where they were retried.", nil, nil)
)

func (c ewsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEWSRequests, descEWSStatus, descEWSExchanges, descEWSBusy, descEWSBackOff, descEWSRetried, descEWSFailed} {
		ch <- d
	}
}

func (c ewsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for op, n := range st.ByOperation {
		ch <- prometheus.MustNewConstMetric(descEWSRequests, prometheus.CounterValue, float64(n), op)
	}
	for status, n := range st.ByStatus {
		ch <- prometheus.MustNewConstMetric(descEWSStatus, prometheus.CounterValue, float64(n), strconv.Itoa(status))
	}
	ch <- prometheus.MustNewConstMetric(descEWSExchanges, prometheus.CounterValue, float64(st.HTTPExchanges))
	ch <- prometheus.MustNewConstMetric(descEWSBusy, prometheus.CounterValue, float64(st.ServerBusy))
	ch <- prometheus.MustNewConstMetric(descEWSBackOff, prometheus.CounterValue, st.BackOff.Seconds())
	ch <- prometheus.MustNewConstMetric(descEWSRetried, prometheus.CounterValue, float64(st.Retried))
	ch <- prometheus.MustNewConstMetric(descEWSFailed, prometheus.CounterValue, float64(st.Failed))
}
