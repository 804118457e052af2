"""Fleet gauges read from storage at scrape time: devices online by role, alarms open by severity."""

from __future__ import annotations

import time
from collections import Counter

from prometheus_client.core import GaugeMetricFamily

SEVERITIES = ("info", "warning", "critical")


class FleetGauges:
    """A prometheus_client collector over the app's storage (every tenant)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def describe(self):  # lets the registry know the names without touching storage at registration
        return self._families()

    def _families(self):
        online = GaugeMetricFamily("fleet_devices_online", "Devices heard from within offline_after_s",
                                   labels=["tenant", "role"])
        alarms = GaugeMetricFamily("fleet_alarms_open", "Alarms open or acknowledged, not cleared",
                                   labels=["tenant", "severity"])
        return [online, alarms]

    def collect(self):
        online, alarms = self._families()
        store = self.ctx.storage
        for (tenant, role), n in sorted(store.count_online(time.time() - self.ctx.settings.offline_after_s).items()):
            online.add_metric([tenant, role], n)
        counts = Counter((a["tenant"], a["severity"])
                         for a in store.list_alarm_records(None, statuses=["open", "acknowledged"]))
        for tenant in sorted({t for t, _ in counts}):
            for severity in SEVERITIES:
                alarms.add_metric([tenant, severity], counts.get((tenant, severity), 0))
        return [online, alarms]
