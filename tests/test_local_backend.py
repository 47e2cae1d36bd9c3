"""The local stack's one backend switch: ``SPECFLEET_LOCAL_AWS_ENDPOINT``
names an AWS emulator already running on loopback (LocalStack, for ``./dev
test --localstack``) to use instead of moto's server; anything that is not
an http URL on a loopback address is refused, since the stack never reaches
out."""

from __future__ import annotations

import pytest

from specfleet.local.stack import AWS_ENDPOINT_ENV, external_endpoint


def test_unset_means_moto(monkeypatch):
    monkeypatch.delenv(AWS_ENDPOINT_ENV, raising=False)
    assert external_endpoint() is None
    monkeypatch.setenv(AWS_ENDPOINT_ENV, "  ")
    assert external_endpoint() is None


@pytest.mark.parametrize(("given", "used"), [
    ("http://127.0.0.1:4566", "http://127.0.0.1:4566"),
    ("http://127.0.0.1:4566/", "http://127.0.0.1:4566"),
    ("http://localhost:4566", "http://localhost:4566"),
    ("http://[::1]:4566", "http://[::1]:4566"),
])
def test_a_loopback_emulator_is_used(monkeypatch, given, used):
    monkeypatch.setenv(AWS_ENDPOINT_ENV, given)
    assert external_endpoint() == used


@pytest.mark.parametrize("given", [
    "http://10.0.0.5:4566",            # another machine
    "https://sqs.us-east-1.amazonaws.com",
    "https://127.0.0.1:4566",          # the stack speaks plain http to its emulator
    "http://127.0.0.1",                # no port
    "127.0.0.1:4566",                  # no scheme
])
def test_anything_else_is_refused(monkeypatch, given):
    monkeypatch.setenv(AWS_ENDPOINT_ENV, given)
    with pytest.raises(ValueError, match=AWS_ENDPOINT_ENV):
        external_endpoint()
