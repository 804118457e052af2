# cfg["cut_after"]: `http` loses the link after N requests.
if cfg.get("cut_after") is not None:
    real, calls = http.request, [0]
    async def flaky(*a, **k):
        calls[0] += 1
        if calls[0] > cfg["cut_after"]:
            raise OSError("link lost")
        return await real(*a, **k)
    http.request = flaky
