# Counters, gauges and histograms with labels, rendered in the Prometheus text format.
# Each series is keyed by its tuple of label values, so updating one allocates nothing
# after its first use.
import gc
import time

DEFAULT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value):
    if value == float("inf"):
        return "+Inf"
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _labels(names, values, extra=""):
    parts = ['%s="%s"' % (n, _escape(v)) for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name, help_text, labels):
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.series = {}

    def _key(self, labels):
        if type(labels) is not tuple:  # a tuple is the key itself: no copy per call
            labels = tuple(labels) if labels else ()
        if len(labels) != len(self.label_names):
            raise ValueError("%s takes labels %s" % (self.name, self.label_names))
        return labels

    def value(self, labels=()):
        return self.series.get(self._key(labels), 0)

    def render_into(self, out):
        out.append("# HELP %s %s\n# TYPE %s %s\n" % (self.name, _escape(self.help), self.name,
                                                   self.kind))
        for labels, value in self.series.items():
            out.append("%s%s %s\n" % (self.name, _labels(self.label_names, labels),
                                      _number(value)))


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name, help_text, labels, read=None):
        super().__init__(name, help_text, labels)
        self.read = read  # unlabelled counter kept by its owner, read at render time

    def render_into(self, out):
        if self.read is not None:
            self.series[()] = self.read()
        super().render_into(out)

    def inc(self, by=1, labels=()):
        if by < 0:
            raise ValueError("counters only go up")
        key = self._key(labels)
        self.series[key] = self.series.get(key, 0) + by


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name, help_text, labels, read=None):
        super().__init__(name, help_text, labels)
        self.read = read  # unlabelled gauge computed at render time (free heap, uptime)

    def set(self, value, labels=()):
        self.series[self._key(labels)] = value

    def inc(self, by=1, labels=()):
        key = self._key(labels)
        self.series[key] = self.series.get(key, 0) + by

    def render_into(self, out):
        if self.read is not None:
            self.series[()] = self.read()
        super().render_into(out)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name, help_text, labels, buckets):
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))

    def observe(self, value, labels=()):
        key = self._key(labels)
        state = self.series.get(key)
        if state is None:
            # per-bucket counts (not cumulative), then sum and count
            state = self.series[key] = [0] * len(self.buckets) + [0, 0]
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                state[i] += 1
                break
        state[-2] += value
        state[-1] += 1

    def render_into(self, out):
        out.append("# HELP %s %s\n# TYPE %s histogram\n" % (self.name, _escape(self.help),
                                                            self.name))
        for labels, state in self.series.items():
            running = 0
            for i, bound in enumerate(self.buckets + (float("inf"),)):
                running = running + state[i] if i < len(self.buckets) else state[-1]
                le = 'le="%s"' % _number(bound)
                out.append("%s_bucket%s %d\n" % (self.name, _labels(self.label_names, labels, le),
                                                 running))
            tags = _labels(self.label_names, labels)
            out.append("%s_sum%s %s\n%s_count%s %d\n" % (self.name, tags, _number(state[-2]),
                                                          self.name, tags, state[-1]))


class Metrics:
    """The registry one device serves at /metrics; managers add theirs in register()."""

    def __init__(self, prefix="iot_"):
        self.prefix = prefix
        self._metrics = {}

    def _add(self, metric):
        existing = self._metrics.get(metric.name)
        if existing is not None:
            if existing.kind != metric.kind:
                raise ValueError(metric.name + " already registered as " + existing.kind)
            return existing  # registering twice hands back the same series
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name, help_text, labels=(), read=None):
        return self._add(Counter(self.prefix + name, help_text, labels, read))

    def gauge(self, name, help_text, labels=(), read=None):
        return self._add(Gauge(self.prefix + name, help_text, labels, read))

    def histogram(self, name, help_text, labels=(), buckets=DEFAULT_BUCKETS):
        return self._add(Histogram(self.prefix + name, help_text, labels, buckets))

    def get(self, name):
        return self._metrics.get(self.prefix + name)

    def render(self):
        out = []
        for metric in self._metrics.values():
            metric.render_into(out)
        return "".join(out)


def register_runtime(metrics, clock=None):
    """Free heap and uptime, read when /metrics is rendered."""
    start = time.ticks_ms()
    metrics.gauge("heap_free_bytes", "Free MicroPython heap", read=gc.mem_free)
    metrics.gauge("uptime_seconds", "Seconds since the library started",
                  read=lambda: time.ticks_diff(time.ticks_ms(), start) // 1000)
