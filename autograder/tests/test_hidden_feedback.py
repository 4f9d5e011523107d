"""Hidden checks' feedback says what is wrong without giving the correct value away (issue 15, item 4):
a student who replays what the feedback said must not earn points. Visible tests, whose inputs are the
student's own, may show expected values (convlab.expect)."""
import numpy as np
import pytest

from autograder.checks import l06_detection
from autograder.grader.spec import Case, Tol, compare
from convlab.tolerance import NEAR_MISS, describe_violation

SECRET = 0.5166666666666667


def _digits_of(value: float) -> list[str]:
    return [f"{value:.{n}g}" for n in range(3, 18)]


@pytest.mark.parametrize("actual,expected", [
    (0.25, SECRET),                                               # a float, far off
    (SECRET * (1 + 1e-13), SECRET),                               # a float, close
    (np.array([[1.0, 2.0], [3.0, 0.25]]), np.array([[1.0, 2.0], [3.0, SECRET]])),
    (np.array([3, 1, 7]), np.array([3, 1, 41])),                  # exact integers
    (5, 4), (True, False), ("valid", "same"), (2.5, 4),          # int results, bools, strings
])
def test_compare_never_states_the_expected_value(actual, expected):
    message = compare(actual, expected, "f(...)", Tol(terms=4))
    assert message, "the wrong answer must fail"
    wanted = np.asarray(expected).ravel()[-1].item()
    given = np.asarray(actual).ravel()[-1].item()
    # a close answer shares leading digits with the correct one: only digits it does not have would leak
    leaks = [d for d in _digits_of(wanted) if d not in _digits_of(given)] if isinstance(wanted, float) else \
        [repr(wanted), str(wanted)]
    assert not any(leak in message for leak in leaks), message
    assert "expected" not in message or "expected a" in message, message


def test_the_students_value_and_the_entry_are_named():
    message = compare(np.array([[1.0, 2.0], [3.0, 0.25]]), np.array([[1.0, 2.0], [3.0, SECRET]]), "f(...)")
    assert "at index (1, 1)" in message and "got 0.25" in message and "far from the correct value" in message
    assert "1 of 4 entries are wrong" in message


def test_a_near_miss_is_told_apart_from_a_wrong_computation():
    bound = np.full(1, 1e-12)
    near = describe_violation("y", np.array([1.0 + 50e-12]), np.array([1.0]), bound, reveal=False)
    far = describe_violation("y", np.array([1.0 + (NEAR_MISS + 1) * 1e-12]), np.array([1.0]), bound, reveal=False)
    assert "close to the correct value" in near and "far from the correct value" in far


def test_visible_tests_still_show_both_values():
    message = describe_violation("y", np.array([0.25]), np.array([SECRET]), np.zeros(1))
    assert "got 0.25, expected 0.5167" in message


def _nms_case(expected):
    return Case("non_max_suppression", expected=np.array(expected), check=l06_detection._int_indices)


def test_nms_feedback_names_the_kept_boxes_not_the_correct_ones():
    assert compare_nms([0, 2], [0, 3, 2]) == ("non_max_suppression(...) kept 2 boxes (indices [0, 2]): too few")
    message = compare_nms([0, 2, 3], [0, 3, 2])
    assert "kept indices [0, 2, 3]" in message and "from position 1 on" in message and "[0, 3, 2]" not in message


def compare_nms(actual, expected):
    case = _nms_case(expected)
    return case.judge(np.array(actual))


def test_match_feedback_counts_wrong_marks_without_saying_which_way():
    case = Case("match_detections", expected=np.array([True, False, True]), check=l06_detection._bool_array)
    assert case.judge(np.array([True, True, False])) == \
        "match_detections(...) marks 2 true positives: 2 of 3 detections are marked wrongly"


def test_tracking_feedback_names_the_students_pairs_not_the_correct_ones():
    from autograder.checks._l06_tracking import _exact_ints
    case = Case("associate", expected=np.array([[5, 2], [3, 1], [0, 0]]))
    message = _exact_ints(np.array([[0, 0], [3, 1], [5, 2]]), case, "pairs")
    assert message == "associate(...) gave pairs [[0, 0], [3, 1], [5, 2]]: not the correct ones from row 0 on"


def test_whole_number_results_are_judged_exactly_without_talk_of_rounding():
    assert compare(2, 18, "cap_depth(...)") == "cap_depth(...) is 2, which is not the correct value"
    assert compare(np.int64(18), 18, "cap_depth(...)") is None
