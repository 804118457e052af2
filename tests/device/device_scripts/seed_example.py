import asyncio

from iotlib import NetworkManager, AuthManager, ConfigManager, Logger, WatchdogManager, StateManager, TimeSyncManager, AlarmManager, OTAUpdateManager
from relays_controller import RelaysController

network = NetworkManager("SSID", "PASSWORD")
auth = AuthManager("device_key")
config = ConfigManager("https://configserver/api", auth, "device_id")
logger = Logger(mask_fields=["token", "password"])


async def main():
    await network.connect(); asyncio.create_task(network.monitor())
    asyncio.create_task(config.fetch_config_loop())
    logger.log("INFO", "message")
    watchdog = WatchdogManager("https://servicediscovery/api", auth, "device_id")
    state = StateManager("https://stateserver/api", auth, "device_id")
    ntp = TimeSyncManager(["pool.ntp.org", "time.google.com"])
    alarms = AlarmManager("https://alarms/api", auth, "device_id")
    asyncio.create_task(watchdog.watchdog_loop()); asyncio.create_task(ntp.sync_loop())
    alarms.report_alarm({"type": "overtemp", "severity": "critical"})
    ota = OTAUpdateManager("https://updates/api", auth)
    controller = RelaysController(wifi_ssid="SSID", wifi_password="PASSWORD",
                                  device_id="device_id", device_key="device_key",
                                  service_discovery_url="https://<host>/api/devices",
                                  relay_pins={"relay1": 2, "relay2": 3})
    await controller.main()


asyncio.run(main())
