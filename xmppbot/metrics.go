package xmppbot

import "github.com/prometheus/client_golang/prometheus"

// metrics are the component's Prometheus series.
type metrics struct {
	connected  prometheus.Gauge
	reconnects prometheus.Counter
	privilege  *prometheus.GaugeVec
	presences  *prometheus.CounterVec
	online     prometheus.Gauge
	requests   *prometheus.CounterVec
	queue      prometheus.Gauge
	mechanism  *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencegw_xmpp_connected",
			Help: "1 while the component is connected to the XMPP server."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "presencegw_xmpp_disconnects_total",
			Help: "Component connections that ended (each is followed by a reconnect)."}),
		privilege: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "presencegw_xmpp_permission",
			Help: "1 for each XEP-0356 permission the server granted (access, type); overlay=1 when the overlay module answers."},
			[]string{"access", "type"}),
		presences: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencegw_xmpp_presences_total",
			Help: "Live presences received through XEP-0356, by outcome (applied, unknown_person, ignored, malformed)."},
			[]string{"outcome"}),
		online: prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencegw_xmpp_online_people",
			Help: "People with at least one online resource."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencegw_xmpp_overlay_requests_total",
			Help: "Overlay requests (set, clear, and scheduled: schedule, cancel) by result (ok, an XMPP error condition, failed)."},
			[]string{"request", "result"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencegw_xmpp_overlay_queue",
			Help: "People whose overlay waits to be sent (one entry per person, latest state only)."}),
		mechanism: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "presencegw_xmpp_mechanism",
			Help: "1 for the way calendar states reach contacts on the current connection (overlay module, ejabberd calendar session, shadow contact, none)."},
			[]string{"mechanism"}),
	}
}

func (m *metrics) setPrivileges(privs map[string]string, overlay bool) {
	m.connected.Set(1)
	m.privilege.Reset()
	for access, typ := range privs {
		m.privilege.WithLabelValues(access, typ).Set(1)
	}
	if overlay {
		m.privilege.WithLabelValues("overlay", "module").Set(1)
	}
}

func (m *metrics) setMechanism(name string) {
	m.mechanism.Reset()
	m.mechanism.WithLabelValues(name).Set(1)
}

// RegisterMetrics adds the component's series to reg.
func (b *Bot) RegisterMetrics(reg prometheus.Registerer) error {
	scheduled := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presencegw_xmpp_scheduled_overlays",
		Help: "Calendar states the server holds to apply at their start (scheduled overlays not yet due)."},
		func() float64 { return float64(b.pub.pendingScheduled()) })
	for _, c := range []prometheus.Collector{b.met.connected, b.met.reconnects, b.met.privilege,
		b.met.presences, b.met.online, b.met.requests, b.met.queue, b.met.mechanism, scheduled} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
