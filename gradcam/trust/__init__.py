"""Should a map be believed? Faithfulness scores next to random maps, and the sanity check."""

from .faithfulness import (
    BETTER, CANNOT_JUDGE, MASKED_PHOTO_SCORES, RANDOM_SEEDS, check_cost, map_score, preview, random_score, ranked,
)
from .pointing import STRONGEST, judge_guess
from .sanity import how_judged, judged_step

__all__ = ["BETTER", "CANNOT_JUDGE", "MASKED_PHOTO_SCORES", "RANDOM_SEEDS", "STRONGEST", "check_cost", "how_judged", "judge_guess",
           "judged_step", "map_score", "preview", "random_score", "ranked"]
