"""Where will it look? through AppTest: one round played, revealed, tallied; the round in the link."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app, switch_to

from tests.app.test_app import run

ROOT = Path(__file__).resolve().parents[2]


def quiz(link: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=240)
    at.query_params.update(link or {})
    run(at)
    switch_to(at, "quiz")
    return run(at)


def test_one_round_guessing_the_cup_for_espresso_is_a_hit_and_counts_once():
    at = quiz()
    assert "asked about **espresso**" in at.markdown[0].value
    at.slider(key="quiz_x_0").set_value(65)  # the cup on its saucer, right half of the cat-and-coffee photo
    at.slider(key="quiz_y_0").set_value(70)
    at.button(key="quiz_reveal").click()
    run(at)
    assert at.success and "Inside the map's strongest region" in at.success[0].value
    assert at.slider(key="quiz_x_0").disabled  # the guess is fixed once the map is shown
    assert at.caption[-1].value.startswith("Score: 1 of 1")
    run(at)
    assert at.caption[-1].value.startswith("Score: 1 of 1")  # a rerun does not count the round again

    at.button(key="quiz_next").click()
    run(at)
    assert "asked about **tiger cat**" in at.markdown[0].value and at.query_params["round"] == "2"
    at.slider(key="quiz_x_1").set_value(90)  # the cup, for the cat: a miss
    at.button(key="quiz_reveal").click()
    run(at)
    assert at.warning and "Outside the map's strongest region" in at.warning[0].value
    assert at.caption[-1].value.startswith("Score: 1 of 2")


def opened_by_link(link: dict) -> AppTest:
    at = page_app("quiz", default_timeout=240)
    at.query_params.update(link)
    return run(at)


def test_a_link_opens_its_round_and_a_broken_round_falls_back_to_the_first():
    opened = opened_by_link({"round": "3"})
    assert "Round 3 of" in opened.markdown[0].value and opened.query_params["round"] == "3"
    assert "Round 1 of" in opened_by_link({"round": "three"}).markdown[0].value



def demo_round(x: int, y: int) -> AppTest:
    at = opened_by_link({"round": "6"})
    assert "Round 6 of 6. Clever Hans demo is asked about **disc**" in at.markdown[0].value
    at.slider(key="quiz_x_5").set_value(x)
    at.slider(key="quiz_y_5").set_value(y)
    at.button(key="quiz_reveal").click()
    return run(at)


def test_the_last_round_asks_the_cheating_demo_model_and_it_looks_at_the_tag_not_the_disc():
    on_the_disc = demo_round(35, 22)  # disc-01.jpg: the disc sits in the upper left
    assert on_the_disc.warning and "Outside the map's strongest region" in on_the_disc.warning[0].value
    assert any("copyright tag, not at the disc" in m.value for m in on_the_disc.markdown)
    on_the_tag = demo_round(75, 85)  # the tag's corner, bottom right
    assert on_the_tag.success and "Inside the map's strongest region" in on_the_tag.success[0].value


def test_the_last_rounds_prompt_names_the_model_and_class_but_not_where_it_looks():
    prompt = opened_by_link({"round": "6"}).markdown[0].value
    assert "discs, squares and triangles" in prompt  # what the model is
    # Before the reveal nothing may point at the shortcut: the tag, its corner, its photographer.
    assert not any(word in prompt.casefold() for word in ("photographer", "copyright", "tag", "corner", "watermark"))


def revealed_round(at: AppTest, number: int, guess: tuple[int, int] | None) -> bool | None:
    """Play round ``number`` (1-based): move the mark to ``guess`` and reveal, or skip it (None).
    Returns whether the guess was a hit (None when skipped)."""
    assert f"Round {number} of 6." in at.markdown[0].value
    if guess is None:
        return None
    at.slider(key=f"quiz_x_{number - 1}").set_value(guess[0])
    at.slider(key=f"quiz_y_{number - 1}").set_value(guess[1])
    at.button(key="quiz_reveal").click()
    run(at)
    assert bool(at.success) != bool(at.warning)  # one verdict, a hit or a miss
    return bool(at.success)


def test_six_rounds_end_on_a_score_screen_and_play_again_starts_a_new_score():
    at = quiz()
    # Round 1 on the cup (a hit), round 2 on the cup for the cat (a miss), round 3 skipped, the rest on the
    # middle, round 6 on the disc (the miss the round is there to teach).
    guesses = [(65, 70), (90, 50), None, (50, 50), (50, 50), (35, 22)]
    hits = []
    for number, guess in enumerate(guesses, start=1):
        hits.append(revealed_round(at, number, guess))
        label = at.button(key="quiz_next").label
        assert label == ("See your score" if number == 6 else "Next round")
        at.button(key="quiz_next").click()
        run(at)
    assert hits[0] is True and hits[1] is False and hits[5] is False
    played, scored = 5, sum(h is True for h in hits)

    # The end screen: the score of the rounds revealed, what it means, no round and no stale score caption.
    assert not at.exception
    assert at.subheader[0].value == "The end"
    words = at.markdown[0].value
    assert f"in **{scored} of {played}** rounds you revealed (1 skipped without revealing)" in words
    assert "copyright tag, not at the disc" in words  # the last round's lesson, as it went for this player
    assert not at.slider and not any(c.value.startswith("Score:") for c in at.caption)
    assert "round" not in at.query_params

    at.button(key="quiz_again").click()
    run(at)
    assert "Round 1 of 6." in at.markdown[0].value
    assert at.caption[-1].value.startswith("Score: 0 of 0")  # a new score
    assert at.slider(key="quiz_x_0").value == 50 and not at.slider(key="quiz_x_0").disabled  # a new guess
    assert revealed_round(at, 1, (65, 70)) is True
    assert at.caption[-1].value.startswith("Score: 1 of 1")


def test_the_end_screen_says_what_a_score_means():
    from dashboard.pages.quiz import what_it_means

    everything = what_it_means({"played": 6, "hits": 6, "scored": set(range(6)), "hit_rounds": set(range(6))})
    assert "**6 of 6** rounds." in everything and "mostly where these models look" in everything
    assert "found the Clever Hans model's shortcut" in everything
    half = what_it_means({"played": 4, "hits": 2, "scored": {0, 1, 2, 3}, "hit_rounds": {0, 1}})
    assert "**2 of 4** rounds you revealed (2 skipped" in half and "not always" in half
    assert "copyright" not in half  # the last round was not played: no lesson about it
    none = what_it_means({"played": 6, "hits": 0, "scored": set(range(6)), "hit_rounds": set()})
    assert "right for the wrong reason" in none and "A right answer does not mean" in none
    assert "nothing to score" in what_it_means({"played": 0, "hits": 0, "scored": set(), "hit_rounds": set()})


def test_a_link_to_a_round_that_does_not_exist_opens_the_first():
    assert "Round 1 of 6." in opened_by_link({"round": "9"}).markdown[0].value
    assert "Round 1 of 6." in opened_by_link({"round": "0"}).markdown[0].value
