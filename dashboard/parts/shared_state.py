"""What every page shares: the photo, model, layer, class, method and look chosen,
and the address bar that carries them.

The choices. Streamlit forgets a widget's value when a page that does not draw
that widget runs, so Explore's choices are also kept in one plain entry,
``st.session_state["chosen"]``, which every page reads through ``choices()``.
Each Explore widget copies its value there in its on_change callback, and
Streamlit runs callbacks before the script: the copy is made even when the run
that follows is cut short. That matters: a person who changes the layer and
clicks another page while "Explaining..." still shows interrupts that run, and a
copy made at the end of it was lost (the next page showed the old layer, and
Explore reverted to it). Values a page sets itself (a new model's default layer,
a new photo's top-1) go through ``choose()``, which writes both places. A layer
is kept with the model it was chosen for, and a class with the photo and model.

The address bar. Every page writes its view (``write_url``): the shared choices
that differ from their defaults, then the page's own keys. What a link cannot
carry is left out (an uploaded photo, an own model, and what depends on them),
and the sender is told in one line what the link will show. ``read_url`` follows
the address on a session's first run (a shared link, whichever page it opens)
and on Back/Forward, where it applies only what changed in the address: Back
from a layer change restores the layer and keeps an uploaded photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import gradcam
from gradcam import report

from .link_numbers import link_number
from .image_picker import SAMPLES, CurrentImage, current_image, current_sample, use_sample
from .model_picker import builtin_models, keep_only_the_model_in_use, load_builtin
from dashboard.safe_text import md

WIDGET_KEYS = ("model_choice", "layer", "method", "target", "opacity", "colormap")
CONTEXT_KEYS = ("layer_for", "target_for")  # the model a layer was chosen for; the (photo, model) of a class
DEFAULT_SAMPLE = next(iter(SAMPLES))
DEFAULTS = {"method": "gradcam", "opacity": 0.4, "colormap": "jet"}


@dataclass(frozen=True)
class Choices:
    image: CurrentImage
    model_key: str
    model: gradcam.Model
    layer: str
    target: int | None  # None: the model's own top-1
    method: str
    opacity: float
    colormap: str


def remember(key: str | None = None) -> None:
    """Copy a widget's value (or all of Explore's) where other pages and reruns find it.
    Used as the widgets' on_change callback, so it runs before the script can be cut short."""
    chosen = st.session_state.setdefault("chosen", {})
    for name in (key,) if key else (*WIDGET_KEYS, *CONTEXT_KEYS):
        if name in st.session_state:
            chosen[name] = st.session_state[name]


def choose(key: str, value) -> None:
    """Set a choice from code: the widget's value before it is drawn, and its shared copy (None: forget it)."""
    chosen = st.session_state.setdefault("chosen", {})
    if value is None:
        st.session_state.pop(key, None)
        chosen.pop(key, None)
    else:
        st.session_state[key] = chosen[key] = value


def restore() -> None:
    """Put remembered values back into widgets that Streamlit dropped."""
    for key, value in st.session_state.get("chosen", {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def current_model_key() -> str:
    """The model the newest choice names: the built-in model picked on Explore (unless it
    failed to load in this session), else the last model that loaded (an uploaded one too)."""
    picked = st.session_state.get("chosen", {}).get("model_choice")
    failed = st.session_state.get("failed_models", {})
    if picked in builtin_models() and picked not in failed:
        return picked
    return st.session_state.get("model_key") or gradcam.DEFAULT_MODEL


def _model_from_key(model_key: str) -> gradcam.Model:
    own = st.session_state.get("own_models", {})
    return own[model_key] if model_key in own else load_builtin(model_key)


def choices() -> Choices:
    """The shared choices, with defaults for anything not chosen yet. Every page but
    Explore starts here, so it also reads the address (a link opening this page)."""
    read_url()
    # Explore's widget values are still in the session on the first run of another page.
    # Their on_change copies them to "chosen", but with Streamlit's fast reruns a page
    # change starts this run at once, beside the cut-short run whose callback makes the
    # copy, and this run could read "chosen" first (a layer picked while "Explaining...",
    # then Compare clicked: Compare showed the old layer). Copied here too, so the newest wins.
    remember()
    chosen = st.session_state.get("chosen", {})
    model_key = current_model_key()
    try:
        model = _model_from_key(model_key)
    except gradcam.ModelLoadError as error:  # e.g. a linked Keras application, offline
        st.error(md(str(error)))
        model_key, model = gradcam.DEFAULT_MODEL, load_builtin(gradcam.DEFAULT_MODEL)
    except KeyError:  # an uploaded model from a session that is gone
        model_key, model = gradcam.DEFAULT_MODEL, load_builtin(gradcam.DEFAULT_MODEL)
    st.session_state["model_key"] = model_key
    keep_only_the_model_in_use(model_key)
    image = current_image()
    names = {t.name for t in gradcam.target_layers(model)}
    layer = chosen.get("layer")
    if chosen.get("layer_for") != model_key or layer not in names:
        layer = gradcam.default_layer(model).name
    target = chosen.get("target")
    if chosen.get("target_for") != (image.sha256, model_key) or not (
            isinstance(target, int) and 0 <= target < len(model.labels)):
        target = None
    if chosen.get("layer_for") == model_key and chosen.get("layer") and chosen.get("layer") not in names:
        refuse_link_value(f"The link names the layer \"{shown_text(chosen['layer'])}\", which {md(model.name)} does "
                          f"not have: showing its default layer, {md(layer)}.")
        choose("layer", None)
        choose("layer_for", None)
    if chosen.get("target_for") == (image.sha256, model_key) and target is None:
        if "target" in url_changes():  # not a class box whose options changed under it (another model's)
            refuse_link_class(chosen.get("target"), model)
        choose("target", None)
        choose("target_for", None)
    method = method_for(model, chosen.get("method"))
    colormap = chosen.get("colormap") if chosen.get("colormap") in gradcam.COLORMAPS else DEFAULTS["colormap"]
    opacity = float(chosen.get("opacity", DEFAULTS["opacity"]))
    say_link_refusals()
    return Choices(image, model_key, model, layer, target, method, opacity, colormap)


def choices_line(c: Choices, model: gradcam.Model) -> str:
    """The line under a page's title that names what Explore chose (Compare and How it works):
    "at layer X", or what a layer-free method works on instead (Guided Backpropagation has no layer)."""
    return (f"{md(c.image.name)} · model {md(model.name)} · {md(report.layer_phrase(c.method, c.layer))} · "
            f"{gradcam.METHODS[c.method].display_name}. Change these on the Explore page.")


def method_for(model: gradcam.Model, method: str | None) -> str:
    """The method chosen if ``model`` can run it, else the default method, with a sentence
    that says so (a link, or Explore with another model, can name a method this model
    lacks the layers for: attention rollout on a CNN)."""
    if method not in gradcam.METHODS:
        return DEFAULTS["method"]
    if method in gradcam.methods_for(model):
        return method
    record, default = gradcam.METHODS[method], gradcam.METHODS[DEFAULTS["method"]]
    why = f" (it works on {record.works_on}, and {md(model.name)} has none)" if record.kind == "attention" else ""
    st.warning(f"{record.display_name} does not apply to {md(model.name)}{why}: the maps here use "
               f"{default.display_name}. Pick another method on the Explore page.")
    return DEFAULTS["method"]


# --- what a link asked for and this dashboard cannot show --------------------------------

_REFUSED = "link_refused"  # session key: this run's sentences about a link's values


def shown_text(value, longest: int = 60) -> str:
    """A link's value quoted in a sentence: escaped, and cut (a crafted link can be long)."""
    text = str(value)
    return md(text if len(text) <= longest else text[:longest] + "...")


def refuse_link_value(sentence: str) -> None:
    """Note that a value read from the link was refused (said once, by say_link_refusals)."""
    st.session_state.setdefault(_REFUSED, []).append(sentence)


def refuse_link_class(value, model: gradcam.Model) -> None:
    """The link's class ``value`` is not one of ``model``'s: the top class is shown instead."""
    refuse_link_value(f"The link asks for class {shown_text(value)}, and {md(model.name)} has {len(model.labels)} "
                      f"classes (0 to {len(model.labels) - 1}): showing its top class.")


def say_link_refusals() -> None:
    """Each value the link named that this dashboard cannot show, in one sentence (once)."""
    for sentence in st.session_state.pop(_REFUSED, []):
        st.warning(f":material/link_off: {sentence}")


# --- the address bar -----------------------------------------------------------------


def _history_navigation() -> bool:
    """Whether this run is the browser's Back or Forward (Streamlit then sends the address it went to)."""
    return bool(getattr(get_script_run_ctx(), "is_history_navigation", False))


def read_url() -> None:
    """Follow the address: on the session's first run (a shared link) and on Back/Forward.
    Called once per run before any widget is drawn: by Explore, and by choices() on the
    other pages. Anything unknown in the address is ignored: a link can be old or hand-edited."""
    now = st.query_params.to_dict()
    seen = st.session_state.get("url_seen")
    if seen is not None and not _history_navigation():
        st.session_state["url_changes"] = {}
        return
    changes = now if seen is None else {k: now.get(k) for k in {*now, *seen} if now.get(k) != seen.get(k)}
    st.session_state["url_seen"] = now
    st.session_state["url_changes"] = changes
    st.session_state.pop(_REFUSED, None)
    if "sample" in changes:
        if (changes["sample"] or DEFAULT_SAMPLE) in SAMPLES:
            use_sample(changes["sample"] or DEFAULT_SAMPLE)  # left out of a link: the first sample
        else:
            refuse_link_value(f"The link names the photo \"{shown_text(changes['sample'])}\", which is not one of "
                              "the samples: showing the photo in use.")
    if "model" in changes:
        if (changes["model"] or gradcam.DEFAULT_MODEL) in builtin_models():
            choose("model_choice", changes["model"] or gradcam.DEFAULT_MODEL)
        else:
            refuse_link_value(f"The link names the model \"{shown_text(changes['model'])}\", which this dashboard "
                              "does not have: showing the model in use.")
    model_key = current_model_key()
    # A layer belongs to its model, a class to its photo and model: a link's model or photo
    # brings its layer and class along, and a layer or class left out means the default.
    if {"model", "layer"} & changes.keys():
        layer = now.get("layer")
        choose("layer", layer)
        choose("layer_for", model_key if layer else None)
    if {"sample", "model", "target"} & changes.keys():
        target = link_number(now.get("target"))  # checked against the model's classes in choices()
        if target is None and now.get("target") is not None:
            refuse_link_value(f"The link asks for class \"{shown_text(now.get('target'))}\", which is not a "
                              "class number: showing the top class.")
        choose("target", target)
        choose("target_for", (current_image().sha256, model_key) if target is not None else None)
    if "method" in changes:  # checked against what the model can run in choices() (and by Explore's engine)
        _choose_named("method", now.get("method"), gradcam.METHODS, gradcam.METHODS[DEFAULTS["method"]].display_name)
    if "colormap" in changes:
        _choose_named("colormap", now.get("colormap"), gradcam.COLORMAPS, DEFAULTS["colormap"])
    if "opacity" in changes:
        try:
            opacity = float(now.get("opacity", DEFAULTS["opacity"]))
        except ValueError:
            opacity = float("nan")
        if not 0.0 <= opacity <= 1.0:  # NaN too
            refuse_link_value(f"The link's opacity \"{shown_text(now.get('opacity'))}\" is not a number from 0 to "
                              f"1: using {DEFAULTS['opacity']:.2f}.")
        choose("opacity", round(opacity / 0.05) * 0.05 if 0.0 <= opacity <= 1.0 else DEFAULTS["opacity"])


def _choose_named(key: str, name, known, default_shown: str) -> None:
    """A link's ``name`` for ``key`` when the dashboard has it (in ``known``); else the default, with a sentence."""
    choose(key, name if name in known else DEFAULTS[key])
    if name is not None and name not in known:
        refuse_link_value(f"The link names the {key} \"{shown_text(name)}\", which this dashboard does not have: "
                          f"using {default_shown}.")


def url_changes() -> dict:
    """What the address changed in this run (a link just opened, or Back/Forward):
    key -> its new value, or None when it was left out. Pages read their own keys here."""
    return st.session_state.get("url_changes", {})


def link_note(photo_travels: bool, model_travels: bool) -> str | None:
    """One line telling the sender what a link to this view will show, when it is not this view."""
    sample = SAMPLES[DEFAULT_SAMPLE]
    if not photo_travels and not model_travels:
        return (f"A link to this page opens the {sample} sample with {gradcam.DEFAULT_MODEL}, not your photo and "
                "model (uploads are not put in links), with the same method and look.")
    if not photo_travels:
        return (f"A link to this page opens the {sample} sample, not your photo (uploads are not put in links), "
                "with the same model, layer, method and look.")
    if not model_travels:
        return (f"A link to this page opens {gradcam.DEFAULT_MODEL}, not your model (uploads are not put in "
                "links), on the same photo, with the same method and look.")
    return None


def write_url(c: Choices, top1: int, own: dict | None = None, *, photo_keys=(), model_keys=()) -> None:
    """Show this page's view in the address bar: the shared choices that differ from their
    defaults, then the page's ``own`` keys (None: left out). ``photo_keys`` and ``model_keys``
    name own keys that only mean something for this photo or this model: they are left out
    when the photo or model is an upload, which a link cannot carry."""
    sample = current_sample()
    photo_travels = sample is not None
    model_travels = not c.model_key.startswith("own:")
    view = {
        "sample": sample if sample != DEFAULT_SAMPLE else None,
        "model": c.model_key if model_travels and c.model_key != gradcam.DEFAULT_MODEL else None,
        "layer": c.layer if model_travels and c.layer != gradcam.default_layer(c.model).name else None,
        "target": c.target if photo_travels and model_travels and c.target not in (None, top1) else None,
        "method": c.method if c.method != DEFAULTS["method"] else None,
        "opacity": f"{c.opacity:.2f}" if abs(c.opacity - DEFAULTS["opacity"]) > 1e-6 else None,
        "colormap": c.colormap if c.colormap != DEFAULTS["colormap"] else None,
    }
    for key, value in (own or {}).items():
        travels = (photo_travels or key not in photo_keys) and (model_travels or key not in model_keys)
        view[key] = value if travels else None
    clean = {key: str(value) for key, value in view.items() if value is not None}
    if st.query_params.to_dict() != clean:
        st.query_params.from_dict(clean)
    st.session_state["url_seen"] = clean
    # For the sidebar's links: the shared view, and each page's own keys as it last wrote them.
    st.session_state["link_shared"] = {key: value for key, value in clean.items() if key not in (own or {})}
    st.session_state.setdefault("link_own", {})[st.session_state.get("page_title", "")] = {
        key: value for key, value in clean.items() if key in (own or {})}
    if note := link_note(photo_travels, model_travels):
        st.sidebar.caption(f":material/link: {note}")
