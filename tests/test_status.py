"""inv status's words for the temp URL's expiry, against a clock the test
sets (expiry_text's `now`)."""

import datetime

import pytest

from tasks.status import expiry_text

EXPIRES = 1767225600          # 2026-01-01 00:00 UTC
UTC = datetime.timezone.utc


def at(seconds_before_expiry):
    return datetime.datetime.fromtimestamp(EXPIRES - seconds_before_expiry, UTC)


@pytest.mark.parametrize("before,state", [
    (2 * 86400, "in 48h"),
    (86400, "in 24h"),
    (3600, "in 1h"),
    (3599, "in 59m"),
    (61, "in 1m"),
    (59, "in 0m"),
    (0, "expired: re-run `inv upload` before booting more servers"),
    (-1, "expired: re-run `inv upload` before booting more servers"),
    (-86400, "expired: re-run `inv upload` before booting more servers"),
])
def test_expiry_against_the_clock(before, state):
    assert expiry_text(EXPIRES, now=at(before)) == f"2026-01-01 00:00 UTC ({state})"


def test_no_record_of_the_expiry():
    assert expiry_text(None, now=at(0)) == "unknown"
