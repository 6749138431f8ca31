"""The exceptions the engine raises for bad input.

All are ValueErrors whose message is one plain sentence a person can act on,
so every front end (dashboard, CLI, library user) can show ``str(error)`` as is.
"""


class InvalidImageError(ValueError):
    """The bytes or file given as an image cannot be used as one."""


class PixelBudgetExceeded(InvalidImageError):
    """The photo was refused by the session's pixel budget (``intake.pixel_budget``), not for
    anything in it: the same photo is read later, or in another session. A result that
    holds such a refusal belongs to that session and that hour, so it is never shared."""


class ModelLoadError(ValueError):
    """A model (or its labels file) cannot be loaded or cannot be explained."""


class ExplanationTooCostly(ValueError):
    """An explanation would hold more memory than the budget allows: refused before any
    pass runs (see ``gradcam.engine.cost``)."""


class InvalidVideoError(ValueError):
    """The bytes or file given as a video cannot be used as one, or exceed its budgets."""
