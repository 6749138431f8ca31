"""Small UI helpers shared by the dashboard's pages: the only place pages share code.

The maths lives in ``gradcam``; these modules only cache its results per session
and lay out widgets.
"""
