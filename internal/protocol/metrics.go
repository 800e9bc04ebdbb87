package protocol

import (
	"context"
	"sync"
	"time"

	"batos/internal/command"
	"batos/internal/metrics"
)

// Request metrics, counted in Handle, so every transport's requests are
// (a transport's own commands, such as the bridge's cancel, included).
// The command label is a command's name, or "unknown" for a request
// naming none that exists: the label set is bounded by the commands. The
// transport label is what the transport put in the request's context
// (WithTransport): "bridge", "http"; "other" without one.
var (
	requestsMetric = metrics.NewCounterVec("batos_requests_total",
		`Requests served through protocol.Handle, by transport (bridge, http), command ("unknown" for a name that is none) and outcome: ok or the error's kind (bad_request, not_found, method_error, ...).`,
		"transport", "command", "outcome")
	requestSeconds = metrics.NewHistogramVec("batos_request_duration_seconds",
		"Latency of a request in protocol.Handle, from its decoded form to its reply's, by transport and command.",
		metrics.FastSeconds, "transport", "command")
	// commandMetrics holds each command's *commandMetric, resolved on
	// its first request: only commands asked for show in a scrape.
	commandMetrics sync.Map
)

// unknownCommand labels a request whose command is missing or unknown.
const unknownCommand = "unknown"

// commandMetric is one command's series, resolved once.
type commandMetric struct {
	transport string
	ok        metrics.Counter
	seconds   metrics.Histogram
	failed    sync.Map // command.Kind -> metrics.Counter
}

// transportKey is the context key of a request's transport's name.
type transportKey struct{}

// WithTransport names the transport a request came by, for the request
// metrics; each transport sets it on the contexts it hands Handle.
func WithTransport(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, transportKey{}, name)
}

func transportOf(ctx context.Context) string {
	if t, ok := ctx.Value(transportKey{}).(string); ok && t != "" {
		return t
	}
	return "other"
}

type metricKey struct{ transport, command string }

func metricOf(transport, name string) *commandMetric {
	key := metricKey{transport, name}
	if m, ok := commandMetrics.Load(key); ok {
		return m.(*commandMetric)
	}
	m, _ := commandMetrics.LoadOrStore(key, &commandMetric{transport: transport, ok: requestsMetric.With(transport, name, "ok"), seconds: requestSeconds.With(transport, name)})
	return m.(*commandMetric)
}

// observeRequest counts a request, by the transport named, for the
// command labelled name that began at start and ended with err.
func observeRequest(transport, name string, start time.Time, err error) {
	m := metricOf(transport, name)
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
		c, _ = m.failed.LoadOrStore(outcome, requestsMetric.With(m.transport, name, string(outcome)))
	}
	c.(metrics.Counter).Inc()
}
