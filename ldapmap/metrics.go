package ldapmap

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the directory's Prometheus series.
type metrics struct {
	people      prometheus.Gauge
	addresses   prometheus.Gauge
	conflicts   *prometheus.GaugeVec
	syncs       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	entries     *prometheus.GaugeVec
}

// RegisterMetrics registers the directory's metrics with reg: index size,
// conflicts (resolved and not), syncs by source, kind and result, their
// duration, and the time of each source's last successful sync, which is
// what an alert on a silently failing directory needs.
func (d *Directory) RegisterMetrics(reg prometheus.Registerer) error {
	m := &metrics{
		people: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "presencegw_directory_people", Help: "People in the directory index.",
		}),
		addresses: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "presencegw_directory_addresses", Help: "Addresses in the directory index.",
		}),
		conflicts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "presencegw_directory_conflicts", Help: "Contested addresses, by how they are decided (unresolved, priority, override).",
		}, []string{"resolution"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presencegw_directory_syncs_total", Help: "Directory syncs by source, kind (full, incremental) and result (ok, error).",
		}, []string{"source", "kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "presencegw_directory_sync_seconds", Help: "Duration of directory syncs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"source", "kind"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "presencegw_directory_last_success_timestamp_seconds", Help: "Unix time of the last successful sync per source.",
		}, []string{"source"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "presencegw_directory_source_people", Help: "People per source after its last sync.",
		}, []string{"source"}),
	}
	for _, c := range []prometheus.Collector{m.people, m.addresses, m.conflicts, m.syncs, m.duration, m.lastSuccess, m.entries} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	d.mu.Lock()
	d.metrics = m
	m.observeIndex(d.index.Load())
	d.mu.Unlock()
	return nil
}

func (m *metrics) observeIndex(ix *Index) {
	p, a := ix.Len()
	m.people.Set(float64(p))
	m.addresses.Set(float64(a))
	counts := map[string]float64{"unresolved": 0, "priority": 0, "override": 0}
	for _, c := range ix.Conflicts() {
		r := c.Resolution
		if r == "" {
			r = "unresolved"
		}
		counts[r]++
	}
	for r, n := range counts {
		m.conflicts.WithLabelValues(r).Set(n)
	}
}

func (m *metrics) observeSync(results []SourceResult) {
	for _, r := range results {
		kind := "incremental"
		if r.Full {
			kind = "full"
		}
		result := "ok"
		if r.Err != nil {
			result = "error"
		}
		m.syncs.WithLabelValues(r.Source, kind, result).Inc()
		if r.Err == nil {
			m.duration.WithLabelValues(r.Source, kind).Observe(r.Duration.Seconds())
			m.lastSuccess.WithLabelValues(r.Source).SetToCurrentTime()
			if r.Full {
				m.entries.WithLabelValues(r.Source).Set(float64(r.Stats.People))
			}
		}
	}
}
