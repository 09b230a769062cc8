"""meetnow's composition root: the ``meetnow`` command and the wiring of its parts.

``signaling`` (rooms, the web server, the relay) and ``bot`` (chat adapters) never import each
other's insides: this package reads all the settings, builds the server, and hands each
configured chat platform a :class:`bot.port.ChatPort` over it (:mod:`meetnow.wiring`).
"""
