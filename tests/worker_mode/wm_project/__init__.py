"""The worker-mode test project: ``channels serve --mode worker`` and ``channels worker``
processes on a real Redis layer (or an IPC layer: ``WM_BACKEND=ipc``).

Its settings come from the environment the tests set: ``WM_REDIS_URL`` and ``WM_PREFIX`` (the
Redis server and the key prefix of one test), ``WM_BACKEND`` (``ipc`` for an IPC layer in
``WM_DATA`` instead), ``WM_MODE`` (``CHANNELS["MODE"]``, unset by default), ``WM_DATA`` (the
directory of the file session store every worker shares), ``WM_VERSION`` (the "code version"
a reply carries, to tell old workers from new ones), ``WM_POOL`` (the pool a worker belongs
to), ``WM_CAPACITY`` (the layer's channel capacity) and ``WM_OUTAGE`` (JSON, for
``CHANNELS["LAYER_OUTAGE"]``). ``wm_project.asgi:channel_layer`` is the layer, for ``channels
serve`` the Channels 1 way.
"""
