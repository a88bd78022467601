"""The metrics test project: an HTTP consumer, a slow one, and a WebSocket echo, served with
``channels-metrics`` by ``channels serve`` in the tests."""
