"""What the pages run on: the caches around the engine, the explanation service switch,
long jobs with a progress bar, and ``boot()``, which the entry point calls once per run
(patches to Streamlit, sandbox workers, the default model warmed in the background).
Importing any module here starts nothing."""
