"""Session-wide test settings: exported ONNX files and engines go to a temporary cache, never
into the checkout's engines/ or the user's cache (subprocesses inherit the variable)."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    old = os.environ.get("REALTIME_SR_CACHE")
    os.environ["REALTIME_SR_CACHE"] = str(tmp_path_factory.mktemp("realtime-sr-cache"))
    yield
    if old is None:
        os.environ.pop("REALTIME_SR_CACHE", None)
    else:
        os.environ["REALTIME_SR_CACHE"] = old
