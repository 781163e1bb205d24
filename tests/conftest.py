"""Session-wide test settings: exported ONNX files and engines go to a temporary cache, never
into the checkout's engines/ or the user's cache (subprocesses inherit the variable); and Ctrl-C
works in the runs the tests start and interrupt."""

import os
import signal

import pytest

# A suite started from a background job of a non-interactive shell (a CI runner's) inherits SIGINT
# ignored, and so would every `realtime-sr` subprocess, whose Python then installs no Ctrl-C
# handler. A handler here is reset to the default on exec, so the subprocesses get their own.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    old = os.environ.get("REALTIME_SR_CACHE")
    os.environ["REALTIME_SR_CACHE"] = str(tmp_path_factory.mktemp("realtime-sr-cache"))
    yield
    if old is None:
        os.environ.pop("REALTIME_SR_CACHE", None)
    else:
        os.environ["REALTIME_SR_CACHE"] = old
