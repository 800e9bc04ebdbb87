package protocol

import (
	"sync"
	"time"

	"batos/internal/command"
	"batos/internal/metrics"
)

// Request metrics, counted in Handle, so every transport's requests are
// (a transport's own commands, such as the bridge's cancel, included).
// The command label is a command's name, or "unknown" for a request
// naming none that exists: the label set is bounded by the commands.
var (
	requestsMetric = metrics.NewCounterVec("batos_requests_total",
		`Requests served through protocol.Handle (every transport: the bridge, HTTP), by command ("unknown" for a name that is none) and outcome: ok or the error's kind (bad_request, not_found, method_error, ...).`,
		"command", "outcome")
	requestSeconds = metrics.NewHistogramVec("batos_request_duration_seconds",
		"Latency of a request in protocol.Handle, from its decoded form to its reply's, by command.",
		metrics.FastSeconds, "command")
	// commandMetrics holds each command's *commandMetric, resolved on
	// its first request: only commands asked for show in a scrape.
	commandMetrics sync.Map
)

// unknownCommand labels a request whose command is missing or unknown.
const unknownCommand = "unknown"

// commandMetric is one command's series, resolved once.
type commandMetric struct {
	ok      metrics.Counter
	seconds metrics.Histogram
	failed  sync.Map // command.Kind -> metrics.Counter
}

func metricOf(name string) *commandMetric {
	if m, ok := commandMetrics.Load(name); ok {
		return m.(*commandMetric)
	}
	m, _ := commandMetrics.LoadOrStore(name, &commandMetric{ok: requestsMetric.With(name, "ok"), seconds: requestSeconds.With(name)})
	return m.(*commandMetric)
}

// observeRequest counts a request for the command labelled name that
// began at start and ended with err.
func observeRequest(name string, start time.Time, err error) {
	m := metricOf(name)
	m.seconds.Observe(time.Since(start))
	if err == nil {
		m.ok.Inc()
		return
	}
	// Keyed by the outcome, not the kind, so that even a kind outside
	// the set (a remote's) adds no series.
	kind, outcome := command.KindOf(err), command.KindInternal
	for _, k := range command.Kinds {
		if k == kind {
			outcome = k
		}
	}
	c, ok := m.failed.Load(outcome)
	if !ok {
		c, _ = m.failed.LoadOrStore(outcome, requestsMetric.With(name, string(outcome)))
	}
	c.(metrics.Counter).Inc()
}
