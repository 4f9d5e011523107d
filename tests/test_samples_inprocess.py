"""Every lesson's typical bugs (BUGS in its check module), judged in process: each fails exactly the
graded cells it declares, with the words it declares (fast feedback for authors; the shipped ones
are graded again end to end in the sandbox by autograder/tests/test_samples.py, on the grader's own
seed of hidden inputs, so between them two different draws are checked)."""
import pytest

from autograder.coursedir import lessons
from autograder.grader.course import Course
from autograder.grader.inprocess import grade_in_process
from autograder.grader.reference import test_points as graded_points   # not collected as a test
from autograder.samples import bugs_of, samples_of


TABLE = [(lesson, name) for lesson in lessons() for name in bugs_of(Course(), lesson)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # some buggy samples overflow on purpose
@pytest.mark.parametrize("lesson,name", TABLE, ids=[f"{lesson}:{name}" for lesson, name in TABLE])
def test_each_bug_fails_exactly_its_cells_with_its_words(lesson, name):
    bugs, points = bugs_of(Course(), lesson), graded_points(lesson)
    sample = bugs[name].sample(points)
    score, messages = grade_in_process(lesson, sample, seed=0)
    assert set(messages) == bugs[name].failing(points), messages
    assert score == sample.score, messages
    for grade_id, phrase in sample.messages.items():
        assert phrase in messages.get(grade_id, ""), f"{grade_id}: {messages.get(grade_id)!r}"


@pytest.mark.parametrize("lesson", lessons())
def test_every_lesson_ships_full_blank_and_bugs_spanning_three_scores(lesson):
    samples = samples_of(Course(), lesson)
    assert samples["full"].base == "solution" and samples["full"].score == sum(graded_points(lesson).values())
    assert samples["blank"].base == "release" and samples["blank"].score == 0
    assert len(samples) >= 4, (f"{lesson}: rule 'two typical bugs': ship at least two typical-bug samples "
                               "besides full and blank (BUGS in its check module)")
    assert len({s.score for s in samples.values()}) >= 3, (
        f"{lesson}: rule 'three scores': its shipped samples must span at least three distinct scores, so that "
        "the grader's tests can tell a partial grade from all and nothing")
