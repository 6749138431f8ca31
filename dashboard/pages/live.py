"""Live: the camera's frames explained as they come, or a video file explained frame by frame.

Camera: streamlit-webrtc sends the camera's frames here over WebRTC; each one goes
to this session's ``gradcam.LiveExplainer`` (the latest frame wins: a frame that
arrives while another is explained replaces the one waiting, nothing queues) and
comes back with the newest map drawn over it, at the page's opacity. The top-5 and
the frame-rate readout refresh a few times a second. Freeze makes the frame the
current photo of every page, as if it had been uploaded, and opens Explore.

Video file: ``gradcam.explain_video`` (decoded in the sandbox) under a progress bar
with Stop; then the MP4 with the overlay, and the top-1 class over time: clicking a
moment opens that frame on Explore.
"""

from __future__ import annotations

import io

import av
import streamlit as st
from PIL import Image
# Imported with the router, before boot() warms TensorFlow in a thread: loading FFmpeg's and
# aiortc's libraries while TensorFlow loads in another thread crashed the server (a segfault).
from streamlit_webrtc import WebRtcMode, webrtc_streamer

import gradcam
from dashboard.pages import explore
from dashboard.parts import method_picker, model_picker, shared_state
from dashboard.parts.camera_probe import camera_state
from dashboard.parts.image_picker import use_photo
from dashboard.parts.layer_labels import layer_option
from dashboard.parts.shared_state import choose
from dashboard.runtime import clicks, ice_servers
from dashboard.runtime.long_jobs import is_done, is_running, long_job, stop_long_job
from dashboard.safe_text import md
from gradcam.intake import VIDEO_FORMATS, sha256

EXPLORE = st.Page(explore.page, title="Explore", url_path="Explore")  # what Freeze opens (pages match by url_path)
TOP1 = "Top-1 of each frame"
READOUT_SECONDS = 0.3  # how often the top-5 and the readout refresh
# The rear camera on phones (the one that sees what the person points at); any camera elsewhere.
CAMERA = {"video": {"facingMode": {"ideal": "environment"}, "width": {"ideal": 640}, "height": {"ideal": 480}},
          "audio": False}
NO_CAMERA = ("No camera could be opened here (none is present, or the browser was not allowed to use it): "
             "explain a video file instead (Video file, above).")
# Said on the page: Freeze opens the frame on Explore, whose map should be the one seen here.
SHARED = "Model, layer, method, opacity and colormap are Explore's: a change here changes them there too."
# What the browser said before the camera is offered (camera_probe): one sentence, then the video mode's link.
WITHOUT_CAMERA = {
    "none": "No camera was found on this device: a video file can be explained instead.",
    "refused": "This browser is not allowed to use the camera here (its site settings, or an earlier answer): "
               "a video file can be explained instead.",
    "insecure": "Browsers open a camera only on an https:// page or on localhost, and this page is neither: "
                "a video file can be explained instead.",
}


def _frame_png(frame) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "PNG")
    return buffer.getvalue()


def _open_on_explore(data: bytes, name: str) -> None:
    if use_photo(data, name):
        st.switch_page(EXPLORE)


def _shared(own_key: str, shared_key: str) -> None:
    """A Live widget's value made the shared choice (Explore shows it too). Widgets are their
    page's own in Streamlit (a key on two pages is two widgets), so Live keeps its own keys."""
    choose(shared_key, st.session_state[own_key])


def _model_chosen(own_key: str) -> None:
    _shared(own_key, "model_choice")


def _follow_the_shared_model() -> None:
    """The Model box shows the model chosen on Explore (or by a link) until it is changed here."""
    wanted = st.session_state.get("chosen", {}).get("model_choice")
    if wanted is not None and st.session_state.get("live_model") != wanted:
        st.session_state["live_model"] = wanted


def _controls(model_key: str, model: gradcam.Model):
    """Explore's choices (model, layer, method, opacity, colormap: changing one here changes it
    there) and the class: each frame's top-1 or one class for every frame."""
    c = shared_state.choices()
    layers = {t.name: t for t in gradcam.target_layers(model)}
    layer_now = c.layer if c.model_key == model_key and c.layer in layers else gradcam.default_layer(model).name
    for own, value in (("live_layer", layer_now), ("live_method", c.method), ("live_opacity", c.opacity),
                       ("live_colormap", c.colormap)):
        if st.session_state.get(own) != value:
            st.session_state[own] = value  # follow what was chosen elsewhere (or here, through choose)
    if st.session_state["live_layer"] not in layers:
        st.session_state["live_layer"] = layer_now

    def keep(own: str, shared: str) -> None:
        _shared(own, shared)
        if shared == "layer":
            choose("layer_for", model_key)

    layer = st.sidebar.selectbox("Layer", list(layers), key="live_layer", on_change=keep, args=("live_layer", "layer"),
                                 format_func=lambda name: layer_option(layers[name]))
    method = st.sidebar.selectbox("Method", list(gradcam.METHODS), key="live_method", on_change=keep,
                                  args=("live_method", "method"),
                                  format_func=method_picker.option_label(model, layer),
                                  help=method_picker.HELP)
    classes = [TOP1, *model.labels]
    target = st.sidebar.selectbox("Class", classes, key="live_class",
                                  help="Each frame's own top-1, or one class for every frame.")
    opacity = st.sidebar.slider("Opacity", 0.0, 1.0, step=0.05, key="live_opacity", on_change=keep,
                                args=("live_opacity", "opacity"))
    colormap = st.sidebar.selectbox("Colormap", gradcam.COLORMAPS, key="live_colormap", on_change=keep,
                                    args=("live_colormap", "colormap"))
    return layer, method, None if target == TOP1 else target, opacity, colormap


def _explainer(model_key: str, model: gradcam.Model) -> gradcam.LiveExplainer:
    """This session's explainer for this model (a new model: a new explainer, the old one closed)."""
    held = st.session_state.get("live_explainer")
    if held is None or held[0] != model_key:
        if held is not None:
            held[1].close()
        held = (model_key, gradcam.LiveExplainer(model))
        st.session_state["live_explainer"] = held
    return held[1]


def _link_to_the_video_mode(label: str) -> None:
    # A page link, not a Markdown one: Markdown links open a new tab, a new session without this one's choices.
    st.page_link(st.Page(page, title="Live", url_path="Live"), label=label, icon=":material/movie:",
                 query_params={"mode": "video"})


def _camera(model_key, model, layer, method, target, opacity, colormap) -> None:
    camera = camera_state()
    if camera in WITHOUT_CAMERA:
        st.info(WITHOUT_CAMERA[camera], icon=":material/videocam_off:")
        _link_to_the_video_mode("Explain a video file instead")
        return
    raw = st.toggle("Raw map of each frame", key="live_raw",
                    help="Off: the map is averaged over frames (an exponential average), so it does not flicker "
                         "on a steady scene. On: each frame's own map.")
    explainer = _explainer(model_key, model)
    warmed = st.session_state.setdefault("live_warmed", set())
    if (model_key, layer, method) not in warmed:
        # Compiled here, before the stream starts: tracing on the stream's first frame held the CPU long
        # enough on a busy machine for the WebRTC connection to give up.
        with st.spinner("Preparing the model for the camera..."):
            try:
                gradcam.explain_batch(model, [Image.new("RGB", (640, 480))], layer=layer, method=method)
            except ValueError as refused:
                st.error(md(str(refused)))
                return
        warmed.add((model_key, layer, method))
    explainer.configure(gradcam.LiveSettings(layer=layer, method=method, target=target))
    # What the frame callback reads: it runs on streamlit-webrtc's thread, which cannot read session state.
    look = st.session_state.setdefault("live_look", {})
    look.update(alpha=opacity, colormap=colormap, raw=raw)

    def explain_and_draw(frame):
        rgb = frame.to_ndarray(format="rgb24")
        explainer.submit(rgb)
        drawn = explainer.draw(rgb, look["alpha"], look["colormap"], raw=look["raw"])
        return av.VideoFrame.from_ndarray(drawn, format="rgb24")

    # No STUN or TURN server unless the operator names some (GRADCAM_ICE_SERVERS): nothing leaves the machine.
    rtc, malformed = ice_servers.rtc_configuration()
    if malformed:
        st.warning(md(malformed))
    left, right = st.columns([3, 2])
    with left:
        stream = webrtc_streamer(key="live-camera", mode=WebRtcMode.SENDRECV, rtc_configuration=rtc,
                                 media_stream_constraints=CAMERA, video_frame_callback=explain_and_draw,
                                 async_processing=True,
                                 translations={"start": "Start the camera", "stop": "Stop",
                                               "device_not_available": NO_CAMERA, "device_access_denied": NO_CAMERA,
                                               "media_api_not_available": NO_CAMERA})
        _link_to_the_video_mode("No camera? Explain a video file instead")
    with right:
        if st.button("Freeze", icon=":material/pause:", type="primary",
                     help="Keep this frame and open it on Explore, as if it had been uploaded."):
            latest = explainer.latest()
            if latest is None:
                st.info("Start the camera first: there is no frame to keep yet.")
            else:
                _open_on_explore(_frame_png(latest.frame), "Live camera frame.png")
        _readout(explainer, stream)


@st.fragment(run_every=READOUT_SECONDS)
def _readout(explainer: gradcam.LiveExplainer, stream) -> None:
    latest = explainer.latest()
    if explainer.error:
        st.error(md(explainer.error))
    if latest is None:
        st.caption("The top-5 appears here once the camera runs.")
        return
    stats = explainer.stats()
    st.markdown("**Top-5** (of the frame the map is of)")
    for p in latest.predictions:
        st.progress(min(max(p.probability, 0.0), 1.0), text=f"{md(p.label)}: {p.probability:.0%}")
    st.caption(f"{stats.explained_per_second:.1f} frames explained a second · the map is "
               f"{stats.latency_seconds * 1000:.0f} ms behind the frame · {stats.dropped} frames skipped")


def _video(model_key, model, layer, method, target, opacity, colormap) -> None:
    upload = st.file_uploader("A video (MP4, WebM or MOV; at most 60 s)", type=list(VIDEO_FORMATS), key="live_video")
    if upload is None:
        st.caption("Every N-th frame is explained and the maps between are blended; N follows from the "
                   "measured speed, so the video is explained about as fast as it plays.")
        return
    data = upload.getvalue()
    key = ("video", sha256(data), model_key, layer, method, target, opacity, colormap)
    go, stop = st.columns(2)
    # Stop is a callback and Explain a kept click: either, clicked while the video is explained, outlives
    # the run it cuts short (dashboard/runtime/clicks.py); a run started meanwhile waits for the job.
    stop.button("Stop", icon=":material/stop:", key="live_video_stop", on_click=stop_long_job)
    if not (clicks.button("Explain the video", key="live_video_go", where=go, type="primary")
            or is_done(key) or is_running(key)):
        return

    def run(progress, stop_event):
        import tempfile

        video = gradcam.load_video_safely(data)  # in the sandbox
        with tempfile.NamedTemporaryFile(suffix=".mp4") as out:
            result = gradcam.explain_video(model, video, out.name, layer=layer, method=method, target=target,
                                           alpha=opacity, colormap=colormap, progress=progress, stop=stop_event)
            mp4 = out.read()
        frames = []  # kept small (JPEG) for a click on the timeline; the maps are not kept
        for frame in video.frames:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, "JPEG", quality=88)
            frames.append(buffer.getvalue())
        return {"mp4": mp4, "timeline": result.timeline(), "every": result.every, "fps": result.fps,
                "frames": frames}

    try:
        done = long_job(key, run, "Explaining the video", "frames")
    except gradcam.ExplanationStopped:
        st.info("Stopped: press Explain the video to start again.")
        return
    except ValueError as refused:  # the video's one sentence (size, length, damage, ...)
        st.error(md(str(refused)))
        return
    every = "every frame" if done["every"] == 1 else f"1 frame in {done['every']}"
    st.caption(f"{len(done['timeline'])} frames at {done['fps']:g} frames a second; {every} explained (chosen "
               "from the measured speed), the maps between blended.")
    st.columns([3, 2])[0].video(done["mp4"], format="video/mp4")
    st.download_button("Download the MP4", done["mp4"], file_name=f"{upload.name.rsplit('.', 1)[0]}-gradcam.mp4",
                       mime="video/mp4")
    _timeline(done, upload.name)


def _timeline(done: dict, name: str) -> None:
    import altair as alt
    import pandas as pd

    rows = pd.DataFrame(done["timeline"]).reset_index(names="frame")
    chart = (alt.Chart(rows).mark_circle(size=60)
             .encode(x=alt.X("seconds", title="seconds"), y=alt.Y("probability", title="top-1 probability",
                                                                  scale=alt.Scale(domain=[0, 1])),
                     color=alt.Color("label", title="top-1 class"), tooltip=["seconds", "label", "probability"])
             .add_params(alt.selection_point(name="moment", fields=["frame"], on="click")))
    st.markdown("**The top-1 class over time** (click a moment to open that frame on Explore)")
    picked = st.altair_chart(chart, on_select="rerun", key="live_timeline", use_container_width=True)
    points = (picked or {}).get("selection", {}).get("moment") or []
    if points:
        frame = int(points[0]["frame"])
        seconds = done["timeline"][frame]["seconds"]
        _open_on_explore(done["frames"][frame], f"{name} at {seconds:.1f} s.jpg")


def page() -> None:
    shared_state.read_url()
    shared_state.restore()
    _follow_the_shared_model()
    with st.sidebar:
        st.header("Grad-CAM Explorer")
        st.caption(SHARED)
        picked = model_picker.model_controls(on_change=_model_chosen, key="live_model")
    st.title("Live")
    modes = {"camera": "Camera", "video": "Video file"}
    wanted = st.query_params.get("mode")
    if wanted in modes and st.session_state.get("live_mode_seen") != wanted:
        st.session_state["live_mode"] = wanted  # a link (the no-camera sentence) opens the video mode
    st.session_state["live_mode_seen"] = wanted
    st.session_state.setdefault("live_mode", "camera")
    mode = st.segmented_control("Source", list(modes), format_func=modes.get, key="live_mode",
                                label_visibility="collapsed")
    model_key, model = model_picker.load(picked)
    chosen = _controls(model_key, model)
    if mode == "video":
        _video(model_key, model, *chosen)
    else:
        _camera(model_key, model, *chosen)
