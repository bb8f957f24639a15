import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

# What a full garbage collection walks in a web worker once it has loaded: the heap it builds
# while serving, not the ~290k objects of Django, DRF and our views (walking those stalled
# every request of the worker for 150-350 ms).
WALKED = """
import gc
import reviewapp.asgi
import reviewapp.studies.api  # loaded by the URL patterns already: nothing new here
print(gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_a_web_worker_keeps_its_loaded_code_out_of_the_garbage_collector() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RADREVIEW_"))}
    env.update(DJANGO_DEBUG="1")
    result = subprocess.run(
        [sys.executable, "-c", WALKED],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    frozen, walked = map(int, result.stdout.split())
    assert frozen > 100_000
    assert walked < frozen / 10
