"""The --processes test project: HTTP and WebSocket on the IPC layer, answers that say who
answered (the process and the code's version, read when the code is imported)."""
