"""Whether this browser can open a camera, asked before the Live page offers one.

streamlit-webrtc says only "NotFoundError: Requested device not found" inside its frame when
its Start button finds no camera, and Python never hears of it. This small component asks the
browser, without opening the camera or prompting: is the page allowed to use cameras at all
(only on https:// or localhost), does the device have one (a browser lists its kinds before any
permission), and has the person refused it (the Permissions API, where there is one). It asks
again when a camera is plugged in or the permission changes.
"""

from __future__ import annotations

import streamlit as st

_ASK = """
export default function ({ setStateValue }) {
  const say = (state) => setStateValue("camera", state);
  const media = navigator.mediaDevices;
  if (!window.isSecureContext || !media || !media.getUserMedia) {
    say("insecure");
    return;
  }
  const ask = () => media.enumerateDevices().then((devices) => {
    if (!devices.some((device) => device.kind === "videoinput")) return say("none");
    if (!navigator.permissions) return say("present");
    return navigator.permissions.query({ name: "camera" }).then((status) => {
      const tell = () => say(status.state === "denied" ? "refused" : "present");
      status.onchange = tell;
      tell();
    }, () => say("present"));
  }, () => say("present"));
  ask();
  media.addEventListener("devicechange", ask);
  return () => media.removeEventListener("devicechange", ask);
}
"""

_probe = st.components.v2.component("gradcam_camera_probe", js=_ASK)


def camera_state() -> str | None:
    """"present", "none" (no camera on this device), "refused" (the person or the browser's
    settings said no), "insecure" (the page is neither https:// nor localhost), or None while the
    browser has not answered (and in AppTest): treat None as a camera that may be there."""
    result = _probe(key="camera_probe", on_camera_change=lambda: None, height=0)
    return result.get("camera") if hasattr(result, "get") else getattr(result, "camera", None)
