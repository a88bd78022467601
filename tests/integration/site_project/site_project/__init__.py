"""A small Django site for the Django-integration tests: a page, a static file, WebSocket
echo, served by runserver, channels serve, uvicorn and the testing helpers."""
