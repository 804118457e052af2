# OTAUpdateManager for full images, on `store` and `stage`, configured from `cfg`.
store = BundleStore(cfg["root"])
store.boot()
stage = ImageStage(cfg["root"])
metrics = Metrics()
health = Health()
health.add_check("app", lambda: (cfg.get("healthy", True), "app"))
http = HttpClient(auth=Auth())
mgr = OTAUpdateManager(cfg["url"] + "/api", device_id=cfg["id"], http=http, store=store,
                       factory_version="1.0.0",
                       public_key=binascii.unhexlify(cfg["key"]), health=health, metrics=metrics,
                       audit=Audit(directory=cfg["root"] + "/logs"), image=stage,
                       alarm=lambda *a: print("ALARM", json.dumps(a)), reset=reset,
                       trial_deadline_s=cfg.get("deadline", 300))
