"""Chat adapters (Slack, Discord): thin layers over the room service."""
