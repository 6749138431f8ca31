"""GRADCAM_ICE_SERVERS: the STUN/TURN servers the Live page's camera connection may use.
Unset means none (offline, the default); a malformed setting is one sentence, and the page
falls back to none."""

import json

import pytest

from dashboard.runtime.ice_servers import ENV, ice_servers, rtc_configuration

TURN = {"urls": ["turn:turn.school.example:3478?transport=udp", "turns:turn.school.example:5349"],
        "username": "classroom", "credential": "s3cret"}


def test_unset_or_blank_means_no_servers_and_nothing_leaves_the_machine(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert ice_servers() == []
    assert rtc_configuration() == ({"iceServers": []}, None)
    monkeypatch.setenv(ENV, "  \n")
    assert rtc_configuration() == ({"iceServers": []}, None)


def test_an_operators_stun_and_turn_servers_reach_the_connection_as_written(monkeypatch):
    servers = [{"urls": "stun:stun.school.example:3478"}, TURN]
    monkeypatch.setenv(ENV, json.dumps(servers, indent=2))
    assert rtc_configuration() == ({"iceServers": servers}, None)
    # What streamlit-webrtc hands aiortc on the server side keeps every server, URLs and credentials.
    from streamlit_webrtc.config import compile_rtc_configuration

    compiled = compile_rtc_configuration({"iceServers": servers}).iceServers
    assert [(s.urls, s.username, s.credential) for s in compiled] == [
        ("stun:stun.school.example:3478", None, None), (TURN["urls"], "classroom", "s3cret")]


SERVER_1 = "Server 1 of GRADCAM_ICE_SERVERS"


@pytest.mark.parametrize("setting, sentence", [
    ('[{"urls": "stun:a.example:3478"}',
     "GRADCAM_ICE_SERVERS is not valid JSON (Expecting ',' delimiter at character 32)"),
    ("stun:a.example:3478", "GRADCAM_ICE_SERVERS is not valid JSON (Expecting value at character 0)"),
    ('{"urls": "stun:a.example:3478"}', "GRADCAM_ICE_SERVERS should be a JSON list of servers"),
    ('["stun:a.example:3478"]', SERVER_1 + " should be an object"),
    ('[{"url": "stun:a.example:3478"}]', SERVER_1 + " has \"url\", which is not one of urls"),
    ('[{"urls": "stun:a.example"}, {"urls": []}]', "Server 2 of GRADCAM_ICE_SERVERS needs \"urls\""),
    ('[{"urls": ["stun:a.example", 3478]}]', SERVER_1 + " needs \"urls\""),
    ('[{"urls": "https://a.example"}]',
     SERVER_1 + " has the address \"https://a.example\", which should start with stun:"),
    ('[{"urls": "turn:a.example:3478"}]',
     SERVER_1 + " is a TURN server: it needs a username and a credential"),
    ('[{"urls": "turns:a.example", "username": "u", "credential": 42}]',
     SERVER_1 + " has a credential that is not text"),
])
def test_a_malformed_setting_is_one_sentence_and_the_camera_still_connects_without_servers(monkeypatch, setting,
                                                                                            sentence):
    with pytest.raises(ValueError) as refused:
        ice_servers(setting)
    assert str(refused.value).startswith(sentence), str(refused.value)
    assert "\n" not in str(refused.value) and "Traceback" not in str(refused.value)
    monkeypatch.setenv(ENV, setting)
    configuration, said = rtc_configuration()
    assert configuration == {"iceServers": []}
    assert said.startswith(sentence) and said.endswith("The camera connects without STUN or TURN servers meanwhile.")


def test_a_credential_is_never_part_of_the_sentence():
    broken = dict(TURN, urls=["turn:a.example", "ftp://a.example"])
    with pytest.raises(ValueError) as refused:
        ice_servers(json.dumps([broken]))
    assert "s3cret" not in str(refused.value) and "classroom" not in str(refused.value)


@pytest.mark.slow
def test_the_live_page_says_a_malformed_setting_and_hands_the_operators_servers_to_the_stream(monkeypatch):
    # streamlit-webrtc cannot run under AppTest (it needs the server's session manager), so the
    # page's call to it is recorded instead: what the browser and aiortc would be given.
    from dashboard.pages import live
    from tests.app.pages import page_app
    from tests.app.test_app import run

    given = []
    monkeypatch.setattr(live, "webrtc_streamer", lambda **kwargs: given.append(kwargs["rtc_configuration"]))
    monkeypatch.setenv(ENV, '[{"url": "stun:stun.school.example:3478"}]')
    at = run(page_app("live", default_timeout=240))
    assert [w.value for w in at.warning] == [
        'Server 1 of GRADCAM\\_ICE\\_SERVERS has "url", which is not one of urls, username, credential\\. '
        "The camera connects without STUN or TURN servers meanwhile\\."]
    assert given[-1] == {"iceServers": []}
    monkeypatch.setenv(ENV, json.dumps([TURN]))
    run(at)
    assert not at.warning
    assert given[-1] == {"iceServers": [TURN]}
    monkeypatch.delenv(ENV)
    run(at)
    assert given[-1] == {"iceServers": []}
