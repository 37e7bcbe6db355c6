import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # Simulated datasets are cached; keep the tests' cache out of the user's home and shared between tests.
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "fsearch-cache"))
