"""The web console: server-rendered pages (pages.py), a little JavaScript (console.js), a session cookie."""
