from unittest import mock

from shop import clients


def test_client_is_cached():
    # BUG: the mock escapes into the lru_cache and outlives the test.
    fake = mock.MagicMock(name="FakeClient")
    client = clients.client_for("shop.test", factory=lambda: fake)
    client.get("/health")
    assert fake.get.called


def test_real_client():
    assert clients.client_for("example.org").get("/") == "GET /"
