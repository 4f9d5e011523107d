"""Every shipped sample of every lesson, graded in the sandbox: its exact score, and the messages its
author expects in both result.json and the HTML feedback; grades.csv agrees with the results."""
from __future__ import annotations

import csv
import html
import json

import pytest

from autograder.insight.load import visible_test_outcomes
from autograder.samples import lesson_samples
from convlab.speed import SPEED_LABEL, SPEED_SECONDS

CASES = [(lesson, name) for lesson, samples in lesson_samples(log=lambda line: None).items() for name in samples]


def test_every_lesson_with_a_release_ships_full_blank_and_partial_samples():
    samples = lesson_samples(log=lambda line: None)
    assert samples, "no lesson has samples"
    for lesson, by_name in samples.items():
        scores = {s.score for s in by_name.values()}
        assert {"full", "blank"} <= set(by_name) and len(scores) >= 3, lesson


@pytest.mark.parametrize("lesson,name", CASES)
def test_sample_gets_its_exact_score_and_messages(graded_samples, lesson, name):
    sample, result = graded_samples.samples[lesson][name], graded_samples.result(lesson, name)
    messages = {p["grade_id"]: p["message"] for p in result["parts"]}
    assert (result["status"], result["score"]) == ("graded", sample.score), (messages, result["notes"])
    feedback = graded_samples.feedback(lesson, name)
    for grade_id, expected in sample.messages.items():
        assert expected in messages[grade_id], messages[grade_id]
        assert expected in html.unescape(feedback)
    if name == "full":   # every point but those of the written answers, which the instructor grades
        pending = sum(p["points"] for p in result["parts"] if p.get("needs_manual_grade"))
        assert result["score"] + pending == result["max_score"] and result["score"] > 0


def test_grades_csv_has_one_row_per_graded_notebook(graded_samples):
    with open(graded_samples.work / "grades.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    graded = [(f"sample_{name}", lesson) for lesson, by_name in graded_samples.samples.items() for name in by_name]
    assert [(r["student"], r["lesson"]) for r in rows] == sorted(graded)
    for row in rows:
        result = graded_samples.result(row["lesson"], row["student"].removeprefix("sample_"))
        assert float(row["score"]) == result["score"] and float(row["max_score"]) == result["max_score"]
        assert sum(float(v) for k, v in row.items() if k.startswith(row["lesson"] + ":") and v) == result["score"]


def test_feedback_shows_the_figures_the_notebook_drew(graded_samples):
    page = graded_samples.feedback("02_relu_pooling", "full")   # lesson 02 plots its feature maps
    assert page.count('src="data:image/png;base64,iVBOR') >= 2


def test_a_syntax_error_in_a_class_is_named_with_its_line(graded_samples):
    # the sandboxed grader sees the cell's SyntaxError (the in-process one only the NameError)
    message = {p["grade_id"]: p["message"] for p in graded_samples.result("04_train_cnn", "dense_syntax_error")["parts"]}
    assert "SyntaxError in your Dense class, line 6: expected ':'" in message["test_Dense"]
    assert "SyntaxError in your Dense class, line 6" in html.unescape(graded_samples.feedback("04_train_cnn",
                                                                                               "dense_syntax_error"))


def test_a_slow_forward_is_timed_once_by_the_hidden_check_not_also_in_its_visible_test(graded_samples):
    lesson, name = "01_conv_forward", "forward_calls_naive"
    feedback = html.unescape(graded_samples.feedback(lesson, name))
    assert f"conv2d_forward on {SPEED_LABEL}: not timed in this cell when graded" in feedback
    assert "of CPU time, the limit" not in feedback       # expect_fast's own failure: the call was not made
    message = {p["grade_id"]: p["message"] for p in graded_samples.result(lesson, name)["parts"]}["test_conv2d_forward"]
    assert f"did not return within the time limit ({SPEED_SECONDS:g} s of CPU time)" in message
    executed = json.loads((graded_samples.work / "autograded" / f"sample_{name}" / lesson / f"{lesson}.ipynb").read_text())
    assert visible_test_outcomes(executed)["test_conv2d_forward"] == "untimed"   # counted as its hidden speed case went


def test_a_slow_backward_is_stopped_at_the_limit_in_its_visible_test_before_the_big_float32_check(graded_samples):
    # Lesson 03's test cell goes on to a float32 check as big as the speed problem, so it keeps expect_fast:
    # a slow answer stops there after the limit, not at the 30 s cell timeout.
    feedback = html.unescape(graded_samples.feedback("03_conv_backward", "backward_calls_naive"))
    assert "of CPU time, the limit" in feedback and "not timed in this cell" not in feedback
    assert "infinite loop?" not in feedback
