-- Background jobs run on one replica at a time: whoever holds a job's unexpired lease runs it.
CREATE TABLE leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
CREATE INDEX nonces_expires_at ON nonces (expires_at);
