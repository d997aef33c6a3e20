import functools


class HttpClient:
    def get(self, url: str) -> str:
        return f"GET {url}"


@functools.lru_cache(maxsize=None)
def client_for(host: str, factory=HttpClient):
    return factory()
