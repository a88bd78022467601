"""Settings of the UDP benchmark project: in-process mode, the memory layer."""

SECRET_KEY = "bench-udp"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
CHANNEL_LAYERS = {"default": {"BACKEND": "memory", "ROUTING": "bench_udp.routing.channel_routing"}}
CHANNELS = {"PROTOCOLS": ["udp"], "MODE": "inprocess"}
