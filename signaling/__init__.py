"""meetnow's server: room service, signaling websocket and the forwarding WebRTC relay."""

__version__ = "0.1.0"
