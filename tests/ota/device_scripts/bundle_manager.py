# OTAUpdateManager for bundles, on `store`, configured from `cfg`.
http = HttpClient(auth=Auth())
health = Health()
health.add_check("app", healthy)
metrics = Metrics()
mgr = OTAUpdateManager(cfg["url"] + "/api", device_id=cfg["id"], http=http, store=store,
                       factory_version=cfg.get("factory", "1.0.0"),
                       public_key=binascii.unhexlify(cfg["key"]), health=health, metrics=metrics,
                       audit=Audit(directory=cfg["root"] + "/logs"),
                       alarm=lambda *a: print("ALARM", json.dumps(a)), reset=reset,
                       trial_deadline_s=cfg.get("deadline", 300), chunk=cfg.get("chunk", 4096),
                       max_bundle=cfg.get("max_bundle", 256 * 1024))
