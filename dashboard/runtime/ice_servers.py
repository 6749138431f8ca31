"""The STUN and TURN servers the Live page's camera connection may use (GRADCAM_ICE_SERVERS).

By default none: the browser and the server find each other by their own addresses (on the
same machine or a local network) and nothing leaves it; streamlit-webrtc's own default would
ask Google's STUN server. A phone on a school network often cannot reach the server that
way (its browser hides its address behind an mDNS name the server cannot resolve, or the
network keeps devices apart), so an operator can name servers, as the JSON list a browser's
RTCPeerConnection takes:

    GRADCAM_ICE_SERVERS='[{"urls": "stun:stun.example.org:3478"},
                          {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]'

Checked here, because streamlit-webrtc silently drops an entry without "urls" (a typo such as
"url" would leave the page offline with no word why) and the browser refuses a TURN server
without a username and credential only in its console.
"""

from __future__ import annotations

import json
import os

ENV = "GRADCAM_ICE_SERVERS"
SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
FIELDS = {"urls", "username", "credential"}
EXAMPLE = '[{"urls": "stun:stun.example.org:3478"}]'


def ice_servers(text: str | None = None) -> list[dict]:
    """The ICE servers named by ``text`` (default: the GRADCAM_ICE_SERVERS variable); unset or
    blank: none. Raises ValueError with one sentence when the setting is malformed."""
    text = os.environ.get(ENV, "") if text is None else text
    if not text.strip():
        return []
    try:
        servers = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{ENV} is not valid JSON ({error.msg} at character {error.pos}): it should be a list "
                         f"such as {EXAMPLE}.") from None
    if not isinstance(servers, list):
        raise ValueError(f"{ENV} should be a JSON list of servers, such as {EXAMPLE}, not a "
                         f"{type(servers).__name__}.")
    return [_checked(server, number) for number, server in enumerate(servers, 1)]


def _checked(server, number: int) -> dict:
    where = f"Server {number} of {ENV}"
    if not isinstance(server, dict):
        raise ValueError(f"{where} should be an object such as {{\"urls\": \"stun:stun.example.org:3478\"}}.")
    unknown = sorted(set(server) - FIELDS)
    if unknown:
        raise ValueError(f"{where} has \"{unknown[0]}\", which is not one of urls, username, credential.")
    urls = server.get("urls")
    listed = [urls] if isinstance(urls, str) else urls
    if not isinstance(listed, list) or not listed or not all(isinstance(url, str) for url in listed):
        raise ValueError(f"{where} needs \"urls\": an address such as \"stun:stun.example.org:3478\", or a list "
                         "of them.")
    for url in listed:
        if not url.lower().startswith(SCHEMES):
            raise ValueError(f"{where} has the address \"{url[:80]}\", which should start with stun:, stuns:, turn: or "
                             "turns:.")
    for field in ("username", "credential"):
        if field in server and not isinstance(server[field], str):
            raise ValueError(f"{where} has a {field} that is not text.")
    if any(url.lower().startswith(("turn:", "turns:")) for url in listed) and not (
            server.get("username") and server.get("credential")):
        raise ValueError(f"{where} is a TURN server: it needs a username and a credential.")
    return dict(server)


def rtc_configuration() -> tuple[dict, str | None]:
    """The camera connection's configuration, and the sentence to show when the setting is
    malformed (then no servers: the default, so the page still works on a local network)."""
    try:
        return {"iceServers": ice_servers()}, None
    except ValueError as malformed:
        return {"iceServers": []}, f"{malformed} The camera connects without STUN or TURN servers meanwhile."
