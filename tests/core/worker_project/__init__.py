"""A Django project whose worker the tests run as a real process (``manage.py runworker``).

Its ``channels_startup`` hook connects to the test's socket on 127.0.0.1 (port in
``WORKER_TEST_PORT``), reports the channels the worker listens on and puts every message the
test sends on the worker's layer (an IPC layer in ``WORKER_TEST_DIR``). Consumers write their
results as files in ``WORKER_TEST_DIR``.
"""
