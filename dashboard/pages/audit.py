"""Audit a dataset: does the model look at the right thing across a whole set of photos,
or has it learned a shortcut (a "Clever Hans" strategy)?

A thin page: gradcam.audit explains every photo, groups each class's maps (SpRAy) and
tests whether a cluster's shared region carries the score; dashboard.audit_view keeps
the result for every session and draws it; gradcam.report.audit_report makes the
pictures and downloads. It opens on the Clever Hans demo, which it catches offline in
seconds. The view (photos, model, layer, method, class, chosen photo) is in the link.
"""

from __future__ import annotations

import streamlit as st

import gradcam
from dashboard.parts import shared_state
from dashboard.pages import audit_fix, audit_results
from dashboard.pages.audit_results import DEMO, MINE, SOURCES
from dashboard.parts.layer_labels import layer_option
from dashboard.parts.model_picker import builtin_models, load_builtin
from dashboard.safe_text import md
from dashboard.parts.shared_state import choices
from gradcam.report import audit_csv, audit_html, cluster_picture
from dashboard.runtime import clicks, long_jobs


def page() -> None:
    """The Audit a dataset page: where the model looks across a set of photos."""
    st.set_page_config(page_title="Audit a dataset - Grad-CAM Explorer", page_icon=":fire:", layout="wide")
    c = choices()
    audit_results.read_link(shared_state.url_changes())
    audit_results.restore()
    keep = audit_results.remember

    st.title("Audit a dataset")
    st.markdown("Does the model look at the right thing **across your photos**, or has it learned a shortcut, like the "
                "horse classifier that looked at a copyright tag instead of the horse? The audit explains every photo, "
                "groups each class's maps, and tests whether the place they share really carries the score.")

    source = st.radio("Photos", list(SOURCES), key="audit_source", format_func=SOURCES.get, horizontal=True,
                      on_change=audit_results.source_changed)
    request = audit_results.demo_request()
    if source == MINE:
        photos_box, masks_box = st.columns(2)
        zipped = photos_box.file_uploader("Photos (.zip)", type=["zip"], key="audit_zip", help=audit_results.ZIP_HELP)
        masks = masks_box.file_uploader("Object masks (optional: .zip of PNGs, or CSV of boxes)", type=["zip", "csv"],
                                        key="audit_masks", help=audit_results.MASKS_HELP)
        request = audit_results.upload_request(zipped, masks)

    # The model: a built-in one, or the model uploaded on Explore in this session.
    own = st.session_state.get("own_models", {})
    models = [*builtin_models(), *own]
    fallback = audit_results.default_model(source, c.model_key)
    if st.session_state.get("audit_model") not in models:
        st.session_state["audit_model"] = fallback if fallback in models else gradcam.DEFAULT_MODEL
    model_box, layer_box, method_box = st.columns(3)
    model_key = model_box.selectbox("Model", models, key="audit_model", on_change=keep, args=("audit_model",),
                                    format_func=lambda k: f"your model ({own[k].name})" if k in own else k,
                                    help="Your own model: upload it on the Explore page first.")
    try:
        with st.spinner(f"Loading {model_key}..."):
            model = own[model_key] if model_key in own else load_builtin(model_key)
    except gradcam.ModelLoadError as error:
        st.error(md(str(error)))
        st.stop()
    layers = {t.name: t for t in gradcam.target_layers(model)}
    if st.session_state.get("audit_layer") not in layers:
        st.session_state["audit_layer"] = gradcam.default_layer(model).name
    layer = layer_box.selectbox("Layer", list(layers), key="audit_layer", on_change=keep, args=("audit_layer",),
                                format_func=lambda name: layer_option(layers[name]))
    methods = audit_results.pick_methods(model)
    if st.session_state.get("audit_method") not in methods:
        st.session_state["audit_method"] = "gradcam"
    method = method_box.selectbox("Method", methods, key="audit_method", on_change=keep, args=("audit_method",),
                                  format_func=lambda key: gradcam.METHODS[key].display_name,
                                  help="The methods that make many forward passes per photo are left out here.")

    audit = None
    if request is None:
        st.info("Upload a .zip of photos (one folder per class), then press **Audit**.")
    else:
        key = audit_results.job_key(request, model_key, layer, method)
        pressed = False
        buttons = st.empty()  # a finished audit needs neither button: emptied once it is done
        if not long_jobs.is_done(key):
            go, stop = buttons.container().columns([1, 1])
            pressed = clicks.button("Audit", key="audit_go", where=go, type="primary", width="stretch")
            # A callback, not the button's value: a Stop clicked while the audit runs must outlive the run it cuts short.
            stop.button("Stop", key="audit_stop", width="stretch", on_click=audit_results.stop, args=(key,),
                        help="Stop the audit that is running; nothing of it is kept.")
        if pressed:
            st.session_state.pop(audit_results.STOP, None)
        # The demo runs by itself (seconds); an upload waits for the button (or for its audit already running,
        # when a click meanwhile started this run), and a stopped run stays stopped.
        wanted = long_jobs.is_done(key) or pressed or long_jobs.is_running(key) or (
            source == DEMO and st.session_state.get(audit_results.STOP) != key)
        if st.session_state.get(audit_results.STOP) == key and not long_jobs.is_done(key):
            st.info("Stopped. Press **Audit** to start again.")
        elif wanted:
            try:
                audit = audit_results.run(request, model_key, model, layer, method)
                buttons.empty()
            except ValueError as refused:  # photos that cannot be read at all: a refused zip, no images, ...
                st.error(md(str(refused)))
            except gradcam.ExplanationStopped:
                st.info("Stopped. Press **Audit** to start again.")
        else:
            st.info(f"Press **Audit** to audit {md(request.name)} with {md(model.name)}.")

    picked_photo = st.session_state.get(audit_results.VIEW, {}).get("audit_photo")
    picked_class = None
    if audit is not None:
        if audit.flagged or audit.flagged_classes:  # the headline; each finding's reason follows with its pictures
            st.error(md(audit.headline()))  # the reason stands beside the cluster's mosaic below
        elif audit.untested:  # never an all-clear for what was not tested
            st.warning(md(audit.headline()))
        else:
            st.success(md(audit.summary()))
        audit_results.problems(audit)

        st.header("Flagged clusters")
        if not audit.flagged:
            st.markdown("No cluster of maps sits on one small region that the model depends on"
                        + (" (among what was tested: see below)." if audit.untested else
                           ": nothing here looks like a small-patch shortcut."))
        for cluster in audit.flagged:
            st.subheader(f"'{md(cluster.label)}', cluster {cluster.number + 1}")  # above its mosaic, on a phone too
            picture, words = st.columns([1, 1.2])
            picture.image(cluster_picture(audit, cluster), width="stretch",
                          caption=f"The cluster's mean map over {min(len(cluster.members), 12)} of its "
                                  f"{len(cluster.members)} '{md(cluster.label)}' photos; the box: the region they share.")
            with words:
                st.error(md(cluster.reason))
                own_drop, random_drop = audit_results.drop_text(cluster)
                first, second = st.columns(2)
                first.metric(f"'{md(cluster.label)}' with the region removed", own_drop,
                             delta=f"{-cluster.reliance:.2f}" if cluster.reliance is not None else None)
                second.metric("A region of the same size elsewhere", random_drop,
                              delta=f"{-cluster.random_reliance:.2f}" if cluster.random_reliance is not None else None,
                              help="The mean drop of the class's probability when a box of the same size is removed "
                                   "somewhere else in the same photos.")
                details = [f"{len(cluster.members)} photos", f"{100 * cluster.consistency:.0f}% of their map inside "
                           f"the region", f"the region is {100 * cluster.area:.0f}% of the photo"]
                if cluster.off_object is not None:
                    details.append(f"in {100 * cluster.off_object:.0f}% of them the map peaks off the object")
                if cluster.infill:
                    details.append(f"strongest drop with the region {audit_results.INFILL_WORDS[cluster.infill]}")
                st.caption(" · ".join(details))
            if cluster.recipients:
                st.markdown(f"**Transplant:** pasted into {cluster.recipients} photos of other classes, the region "
                            f"made {cluster.flips} of them '{md(cluster.label)}' (a region of the same size from "
                            f"elsewhere: {cluster.random_flips}).")
            audit_results.before_after(cluster.examples)
        for cls in audit.flagged_classes:
            st.subheader(f"'{md(cls.label)}': the answer follows the background")
            st.error(md(cls.reason))
            audit_results.before_after(cls.background.examples if cls.background else [])

        st.header("Classes")
        audit_results.classes_overview(audit_results.class_rows(audit))
        for cls in audit.classes:
            flagged = sum(k.flagged for k in cls.clusters)
            title = f"{cls.label}: {cls.count} photos, {len(cls.clusters)} cluster{'s' if len(cls.clusters) != 1 else ''}"
            with st.expander(md(title + (f", {flagged} flagged" if flagged else "")), expanded=False):
                with st.container(horizontal=True, gap="small"):
                    for cluster in cls.clusters:
                        with st.container(width=260, gap="xsmall"):
                            st.image(cluster_picture(audit, cluster, columns=3), width="stretch")
                            st.caption(("**Flagged.** " if cluster.flagged else "") + md(cluster.reason))
                if cls.reason and not cls.flagged:  # the background or colour swap
                    st.caption(md(cls.reason))
                    test = cls.background or cls.colours
                    audit_results.before_after(test.examples if test else [])
                outliers = [p.path for p in audit.outliers if p.label == cls.label]
                if outliers:
                    st.caption("Far from every cluster: " + ", ".join(md(p) for p in outliers))

        if audit.untested:
            st.header("What was not tested")
            for sentence in audit.untested:
                st.warning(md(sentence))

        st.header("Every map, side by side")
        labels = [cls.label for cls in audit.classes]
        if labels:
            if st.session_state.get("audit_class") not in labels:
                flagged_first = audit.flagged[0].label if audit.flagged else labels[0]
                st.session_state["audit_class"] = flagged_first
            picked_class = st.selectbox("Class", labels, key="audit_class", on_change=keep, args=("audit_class",))
            frame = audit_results.embedding_frame(audit, picked_class)
            chart_key = f"audit_points_{picked_class}"
            # The click arrives in the chart's state before the chart is drawn again, so the
            # clicked point is outlined in this very run.
            clicked = audit_results.chart_pick(st.session_state.get(chart_key))
            if clicked is not None and clicked != st.session_state.get("audit_clicked"):
                picked_photo = clicked  # a new click wins over a photo named by the link
                st.session_state.setdefault(audit_results.VIEW, {})["audit_photo"] = clicked
            st.session_state["audit_clicked"] = clicked
            chart_box, photo_box = st.columns([1.5, 1])
            with chart_box:
                st.caption("Each point is one photo's map, placed so that similar maps sit close together (the "
                           "clustering's own embedding). Click a point to see that photo.")
                st.altair_chart(audit_results.embedding_chart(frame, picked_photo), on_select="rerun", key=chart_key,
                                width="stretch")
            members = set(frame["path"])
            if picked_photo not in members:
                picked_photo = None
            with photo_box:
                if picked_photo is None:
                    st.info("Click a point to see that photo and its map.")
                else:
                    photo = audit.photo(picked_photo)
                    cluster = audit_results.cluster_of(audit, photo)
                    shown = audit_results.photo_overlay(audit, photo, cluster)
                    where = "far from every cluster" if photo.outlier else (
                        f"cluster {photo.cluster + 1}" if photo.cluster is not None else "no cluster")
                    truth = f", truly '{md(photo.true_label)}'" if photo.true_label else ""
                    if shown is not None:
                        st.image(shown, width="stretch", caption=f"{md(photo.path)}: '{md(photo.label)}' "
                                 f"{100 * (photo.probability or 0):.0f}%{truth}, {where}")

        # Find and prove above; here the fix of a finding, the re-audit and another model side by
        # side (dashboard/pages/audit_fix.py).
        audit_fix.section(audit_results.job_key(request, model_key, layer, method), request, model, audit,
                          other_models={**own, **{k: None for k in builtin_models()}}, model_key=model_key,
                          layer=layer, method=method)

        st.header("Downloads")
        html_box, csv_box, json_box = st.columns(3)
        html_box.download_button("Audit report (HTML)", lambda: audit_html(audit), file_name="gradcam-audit.html",
                                 mime="text/html", on_click="ignore", width="stretch")
        csv_box.download_button("Every photo (CSV)", audit_csv(audit), file_name="gradcam-audit.csv", mime="text/csv",
                                on_click="ignore", width="stretch")
        json_box.download_button("Everything (JSON)", lambda: audit.to_json(), file_name="gradcam-audit.json",
                                 mime="application/json", on_click="ignore", width="stretch")

    # The link: the shared choices, then this page's own (an upload's photos and an own model
    # cannot travel: the link then opens the upload box, or the default model).
    demo = source == DEMO
    top1 = gradcam.predict(c.model, c.image.image, top=1)[0].index if c.target is not None else -1  # only for "target"
    shared_state.write_url(c, top1, {
        "audit_photos": MINE if not demo else None,
        "audit_model": model_key if model_key not in own and model_key != audit_results.default_model(source, c.model_key)
        else None,
        "audit_layer": layer if model_key not in own and layer != gradcam.default_layer(model).name else None,
        "audit_method": method if method != "gradcam" else None,
        "audit_class": picked_class if demo and picked_class and audit is not None and audit.classes
        and picked_class != (audit.flagged[0].label if audit.flagged else audit.classes[0].label) else None,
        "audit_photo": picked_photo if demo and picked_photo else None,
    })
    if not demo:
        st.sidebar.caption(":material/link: A link to this page opens the upload box with the same model and method: "
                           "your photos are not put in links.")
