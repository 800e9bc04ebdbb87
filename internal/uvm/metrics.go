package uvm

import (
	"time"

	"batos/internal/command"
	"batos/internal/metrics"
)

// Send metrics: every Send and SendWith, whatever asked (a transport,
// the CLI's own image, a bench), counted once however many times a
// conflict or a learned method ran it again.
var (
	sendsMetric = metrics.NewCounterVec("batos_sends_total",
		"Message sends through the uvm (each in its own transaction, learning included), by outcome: ok or the error's kind (method_error, limit, no_mind, learning_failed, cancelled, ...).",
		"outcome")
	sendSeconds = metrics.NewHistogram("batos_send_duration_seconds",
		"Latency of a send through the uvm, from the call to its answer: waiting for a worker, conflict reruns, and any cycle learning its method included.",
		metrics.FastSeconds)
	sendsOK     = sendsMetric.With("ok")
	sendsFailed = kindCounters(sendsMetric)
)

// kindCounters resolves v's counter of every command error kind.
func kindCounters(v *metrics.CounterVec) map[command.Kind]metrics.Counter {
	m := make(map[command.Kind]metrics.Counter, len(command.Kinds))
	for _, k := range command.Kinds {
		m[k] = v.With(string(k))
	}
	return m
}

// observeSend counts a send that began at start and ended with err.
func observeSend(start time.Time, err error) {
	sendSeconds.Observe(time.Since(start))
	if err == nil {
		sendsOK.Inc()
		return
	}
	c, ok := sendsFailed[command.KindOf(err)]
	if !ok {
		c = sendsFailed[command.KindInternal]
	}
	c.Inc()
}
