package vm

import (
	"strings"
	"time"

	"batos/internal/metrics"
)

// Method metrics, counted with the Telemetry (a VM without one counts
// neither): every method execution, top-level or nested, by outcome,
// and one latency histogram for all of them. The histogram has no
// method label on purpose: selectors are image data, learned without
// bound, and per-method latency is what the Telemetry keeps, in the
// image.
var (
	methodCalls = metrics.NewCounterVec("batos_method_calls_total",
		"Method executions (top-level sends and nested ones) in the image's VM, by outcome: ok, error, cancelled, not_understood, or the limit that stopped it (step_limit, time_limit, memory_limit, call_depth_limit, nesting_limit, reply_limit).",
		"outcome")
	methodSeconds = metrics.NewHistogram("batos_method_duration_seconds",
		"Latency of one method execution in the image's VM, nested sends included, whatever its outcome.",
		metrics.FastSeconds)
	methodOK     = methodCalls.With("ok")
	methodFailed = failureCounters()
)

// failureCounters resolves the counter of every failure kind
// failureOf names.
func failureCounters() map[string]metrics.Counter {
	m := map[string]metrics.Counter{}
	for _, kind := range []string{KindError, KindCancelled, KindNotUnderstood} {
		m[kind] = methodCalls.With(metricLabel(kind))
	}
	for l := StepLimit; l <= ReplyLimit; l++ {
		m[l.String()] = methodCalls.With(metricLabel(l.String()))
	}
	return m
}

// metricLabel is a kind as a label value: "call-depth limit" is
// "call_depth_limit".
func metricLabel(kind string) string {
	return strings.NewReplacer(" ", "_", "-", "_").Replace(kind)
}

// observeMethod counts one method execution that failed with kind ("" if
// it succeeded) after d.
func observeMethod(kind string, d time.Duration) {
	methodSeconds.Observe(d)
	if kind == "" {
		methodOK.Inc()
		return
	}
	c, ok := methodFailed[kind]
	if !ok {
		c = methodFailed[KindError]
	}
	c.Inc()
}
