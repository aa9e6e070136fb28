"""Point discord.py at a configurable REST base URL and gateway URL.

pipebot exposes two settings, ``DISCORD_API_URL`` (default ``https://discord.com/api/v10``) and
``DISCORD_GATEWAY_URL`` (default Discord's own gateway), so the bot can run behind a proxy or against
the loopback fake used by the tests.  discord.py has no constructor option for either URL, so
:func:`configure_endpoints` sets the two class attributes the library reads them from:

* REST: every request is built by :class:`discord.http.Route`, whose ``url`` is
  ``Route.BASE + path``.  ``Route.BASE`` is a plain ``ClassVar[str]`` that discord.py itself
  reassigns (``discord.http._set_api_version``), so assigning it is the supported-in-practice hook.
  The interaction callback and follow-up webhook requests (``discord.webhook.async_``) build their
  URLs with the same ``Route`` class, so they follow too.
* Gateway: in discord.py 2.7 a plain :class:`discord.Client` never calls ``GET /gateway/bot``.
  ``Client.connect`` calls ``DiscordWebSocket.from_client`` without a ``gateway`` argument, which
  falls back to the class attribute ``DiscordWebSocket.DEFAULT_GATEWAY``; the library also resets
  to that attribute after an INVALID_SESSION.  (Only ``AutoShardedClient`` without an explicit
  ``shard_count`` uses the URL returned by ``/gateway/bot``, which a proxy or the fake answers
  itself.)  Overriding ``HTTPClient.get_bot_gateway`` would therefore have no effect for
  ``Client``; setting ``DEFAULT_GATEWAY`` is the single knob that covers the first connection and
  reconnects.  After READY, discord.py resumes on the ``resume_gateway_url`` sent by the gateway,
  so a proxy has to rewrite that field as well.

Both attributes are process-wide: every client in the process uses the configured endpoints.
Passing ``None`` restores discord.py's defaults.  discord.py replaces the query string of the
gateway URL (``?v=10&encoding=json&compress=...``), so any query given here is dropped.
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

__all__ = ["DEFAULT_API_URL", "DEFAULT_GATEWAY_URL", "configure_endpoints"]

DEFAULT_API_URL = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"


def configure_endpoints(api_url: str | None, gateway_url: str | None) -> None:
    """Make discord.py use ``api_url`` for REST calls and ``gateway_url`` for the websocket.

    ``None`` means discord.py's default for that endpoint.  Raises :class:`ValueError` for a URL
    that is not absolute or has the wrong scheme (``http``/``https`` for REST, ``ws``/``wss`` for
    the gateway).
    """
    api = DEFAULT_API_URL if api_url is None else api_url.strip().rstrip("/")
    api_parsed = yarl.URL(api)
    if api_parsed.scheme not in ("http", "https") or not api_parsed.host:
        raise ValueError(f"DISCORD_API_URL must be an absolute http(s) URL, got {api_url!r}")

    gateway = yarl.URL(DEFAULT_GATEWAY_URL if gateway_url is None else gateway_url.strip())
    if gateway.scheme not in ("ws", "wss") or not gateway.host:
        raise ValueError(f"DISCORD_GATEWAY_URL must be an absolute ws(s) URL, got {gateway_url!r}")

    discord.http.Route.BASE = api
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway.with_query(None)
