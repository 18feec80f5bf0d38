"""The local web interfaces: the mediator's desk, the institution's kiosk, the participant's app.

Each is a small aiohttp application that the ``relay`` command serves on the person's own
machine, bound to loopback, opened in that machine's browser. It holds the person's unlocked
key in memory for one session, talks to the relay through the same SDK as the CLI, and decrypts
in memory. The relay server never serves these pages or their scripts: code that handles keys
and plaintext never comes from the host that stores ciphertext.

Loopback is not access control (any local process or web page can reach 127.0.0.1), so, as
Jupyter does: a one-time link printed at start is exchanged for an HttpOnly, SameSite=Strict
cookie; the Host header must name loopback (DNS rebinding); every form carries a CSRF token;
the Content-Security-Policy allows no inline script and no framing; nothing is cached.
"""
