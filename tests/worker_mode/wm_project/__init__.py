"""The worker-mode test project: ``channels serve --mode worker`` and ``channels worker``
processes on a real Redis layer.

Its settings come from the environment the tests set: ``WM_REDIS_URL`` and ``WM_PREFIX`` (the
Redis server and the key prefix of one test), ``WM_DATA`` (the directory of the file session
store every worker shares), ``WM_VERSION`` (the "code version" a reply carries, to tell old
workers from new ones), ``WM_POOL`` (the pool a worker belongs to) and ``WM_CAPACITY`` (the
layer's channel capacity).
"""
