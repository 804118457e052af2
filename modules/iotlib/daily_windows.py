# Daily on/off windows, as a relay's `schedule` holds them: [{"on": "06:00", "off":
# "06:30:15"}, ...], times of day in UTC (the device's wall clock). Imported only where a
# schedule is configured, so a device without one spends no RAM on it.
DAY_S = 86400
MAX_WINDOWS = 4


def day_seconds(text, path):
    """"HH:MM" or "HH:MM:SS" -> seconds since midnight; ValueError names the field."""
    if isinstance(text, str) and len(text) in (5, 8) and text[2] == ":" \
            and (len(text) == 5 or text[5] == ":"):
        if (text[:2] + text[3:5] + text[6:]).isdigit():
            h, m, s = int(text[:2]), int(text[3:5]), int(text[6:] or "0")
            if h < 24 and m < 60 and s < 60:
                return h * 3600 + m * 60 + s
    raise ValueError('%s: must be a time "HH:MM" or "HH:MM:SS" (UTC)' % path)


def parse(windows, path):
    """[{"on": t, "off": t}, ...] -> [(on_s, off_s), ...]; ValueError names the field."""
    if not isinstance(windows, list) or len(windows) > MAX_WINDOWS:
        raise ValueError('%s: must be a list of at most %d {"on", "off"} windows'
                         % (path, MAX_WINDOWS))
    out = []
    for i, window in enumerate(windows):
        where = "%s[%d]" % (path, i)
        if not isinstance(window, dict) or len(window) != 2 or "on" not in window \
                or "off" not in window:
            raise ValueError('%s: must be {"on": "HH:MM", "off": "HH:MM"}' % where)
        on = day_seconds(window["on"], where + ".on")
        off = day_seconds(window["off"], where + ".off")
        if on == off:
            raise ValueError("%s: on and off must differ" % where)
        out.append((on, off))
    return out


def is_on(windows, day_s):
    """True when `day_s` (seconds since midnight) lies in one of the windows; a window whose
    off comes before its on runs over midnight."""
    for on, off in windows:
        if (on <= day_s < off) if on < off else (day_s >= on or day_s < off):
            return True
    return False
