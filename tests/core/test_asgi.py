from tests.core.test_settings import python_run

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
    result = python_run(WALKED, DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    frozen, walked = map(int, result.stdout.split())
    assert frozen > 100_000
    assert walked < frozen / 10
