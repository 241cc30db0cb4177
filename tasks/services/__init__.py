"""Services: the session with its retries, and one client per cloud API (and SSH)."""
