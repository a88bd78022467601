"""The UDP test project: an echo consumer and a few commands the tests send as datagrams.

Its layer is the memory layer, or Redis when ``UDP_REDIS_URL`` is set (worker mode, with
``UDP_PREFIX`` as the key prefix of one test).
"""
