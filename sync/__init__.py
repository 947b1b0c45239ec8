"""The gate ⇄ hub protocol: messages, sans-I/O sessions and thin websocket transports."""
