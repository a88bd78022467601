"""The data binding test project: notes saved anywhere reach WebSocket clients."""
