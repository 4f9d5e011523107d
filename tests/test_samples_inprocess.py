"""Every lesson's sample submissions score exactly as declared, judged in-process (fast feedback for
authors; autograder/tests/test_samples.py asserts the same scores end to end in the sandbox, on the
grader's own seed of hidden inputs, so between them two different draws are checked)."""
import pytest

from autograder.build import lessons
from autograder.grader.inprocess import grade_in_process
from autograder.grader.reference import test_points as graded_points   # not collected as a test
from autograder.samples import sample_module

SAMPLES = [(lesson, name) for lesson in lessons() for name in sample_module(lesson).SAMPLES]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # some buggy samples overflow on purpose
@pytest.mark.parametrize("lesson,name", SAMPLES, ids=[f"{lesson}:{name}" for lesson, name in SAMPLES])
def test_sample_scores_exactly_and_its_feedback_names_the_bug(lesson, name):
    sample = sample_module(lesson).SAMPLES[name]
    score, messages = grade_in_process(lesson, sample, seed=0)
    assert score == sample.score, messages
    for grade_id, phrase in sample.messages.items():
        assert phrase in messages.get(grade_id, ""), f"{grade_id}: {messages.get(grade_id)!r}"


@pytest.mark.parametrize("lesson", lessons())
def test_every_lesson_ships_a_full_and_a_blank_sample_worth_all_and_nothing(lesson):
    samples = sample_module(lesson).SAMPLES
    assert samples["full"].base == "solution" and samples["full"].score == sum(graded_points(lesson).values())
    assert samples["blank"].base == "release" and samples["blank"].score == 0
    assert len(samples) >= 4, f"{lesson}: ship at least two typical-bug samples besides full and blank"
