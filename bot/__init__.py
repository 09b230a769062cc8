"""Chat adapters: Slack and Discord, thin layers over the chat port.

Each adapter turns ``/meetnow`` into one :meth:`bot.port.ChatPort.create_room` call and a message
(the *card*), and keeps that card up to date from the room events (:class:`bot.core.ChatCards`).
An adapter receives a :class:`bot.port.ChatPort` and its own settings (``bot/*_settings.py``),
nothing else; the composition root (``meetnow.wiring``) installs the configured ones. Adapters
are only imported when their settings are present.
"""
