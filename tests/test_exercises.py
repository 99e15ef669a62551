"""exercises.check_against (what check("name") runs with a registered exercise): verdicts, hints for each common mistake, strict mode."""

import numpy as np
import pytest
import torch

from course_lib.course.exercises import ExerciseError
from course_lib.course.exercises import check_against as check


def mean_loss(x):
    return float(np.mean(np.asarray(x) ** 2))


def entropy(p):
    p = np.asarray(p, float)
    return float(-np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)))


CASES = [(np.array([1.0, -2.0, 3.0]),), (np.arange(1.0, 9.0),)]


def run(student, reference=mean_loss, cases=CASES, capsys=None, **kw):
    result = check(student, reference, cases, name="f", strict=False, **kw)
    return result, capsys.readouterr().out


def test_right_answer_is_truthy_and_says_right(capsys):
    result, out = run(lambda x: float(np.mean(np.square(x))), capsys=capsys)
    assert result and result.status == "right"
    assert out.startswith("RIGHT: f matches the reference on all 2 checks")


def test_not_implemented_says_not_done_and_names_the_fallback(capsys):
    def blank(x):
        raise NotImplementedError()

    result, out = run(blank, capsys=capsys, fallback="toy.mean_loss")
    assert not result and result.status == "not done"
    assert "NOT DONE YET" in out and "raise NotImplementedError()" in out
    assert "the rest of the notebook uses toy.mean_loss" in out


def test_sign_hint(capsys):
    result, out = run(lambda x: -float(np.mean(np.square(x))), capsys=capsys)
    assert result.status == "wrong"
    assert "got -4.66667, expected 4.66667" in out and "check the sign" in out


def test_sum_instead_of_mean_hint(capsys):
    _, out = run(lambda x: float(np.sum(np.square(x))), capsys=capsys)
    assert "3x too large: a sum where the formula takes a mean" in out
    assert "8x too large" in out


def test_mean_instead_of_sum_hint(capsys):
    _, out = run(lambda x: float(np.mean(np.square(x))), reference=lambda x: float(np.sum(np.square(x))), capsys=capsys)
    assert "3x too small: a sum where the formula takes a mean (or the other way round)" in out


def test_zero_log_zero_hint(capsys):
    def naive_entropy(p):
        p = np.asarray(p, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(-np.sum(p * np.log(p)))

    _, out = run(
        naive_entropy, reference=entropy, cases=[(np.array([0.5, 0.5]),), (np.array([1.0, 0.0]),)], capsys=capsys
    )
    assert "case 1 (p = array [1., 0.]): got nan, expected" in out and "0·log 0" in out
    assert "case 0" not in out  # the case without zeros is right


def test_wrong_axis_hint(capsys):
    x = np.arange(12.0).reshape(4, 3)
    _, out = run(lambda a: a.mean(axis=1), reference=lambda a: a.mean(axis=0), cases=[(x,)], capsys=capsys)
    assert "shape (4,), expected (3,)" in out and "check the axis you reduce over" in out


def test_transposed_hint(capsys):
    x = np.arange(6.0).reshape(2, 3)
    _, out = run(lambda a: a.T @ np.ones((2, 2)), reference=lambda a: np.ones((2, 2)) @ a, cases=[(x,)], capsys=capsys)
    assert "transposed" in out


def test_returning_none_hint(capsys):
    def forgot_return(x):
        float(np.mean(np.square(x)))

    _, out = run(forgot_return, capsys=capsys)
    assert "returned None" in out and "is the `return` statement missing?" in out


def test_tensor_where_float_expected_hint(capsys):
    result, out = run(lambda x: torch.as_tensor(x).square().mean(), capsys=capsys)
    assert result.status == "wrong"
    assert "returned a torch tensor holding the right value where a float is expected" in out
    assert ".item()" in out


def test_exercise_specific_mistake_hint(capsys):
    mistakes = {"the loss squares the inputs; you took absolute values": lambda x: float(np.mean(np.abs(x)))}
    _, out = run(lambda x: float(np.mean(np.abs(x))), capsys=capsys, mistakes=mistakes)
    assert "hint: the loss squares the inputs; you took absolute values" in out


def test_student_error_is_reported_with_its_line(capsys):
    _, out = run(lambda x: x.no_such_method(), capsys=capsys)
    assert "raised AttributeError" in out


def test_student_cannot_change_the_reference_inputs(capsys):
    def mutating(x):
        x *= 0
        return 0.0

    x = np.array([1.0, 2.0])
    run(mutating, cases=[(x,)], capsys=capsys)
    assert x.tolist() == [1.0, 2.0]


def test_strict_modes(monkeypatch, capsys):
    def blank(x):
        raise NotImplementedError()

    wrong = lambda x: -mean_loss(x)  # noqa: E731
    with pytest.raises(ExerciseError, match="WRONG: f differs .* check the sign"):
        check(wrong, mean_loss, CASES, name="f", strict=True)
    with pytest.raises(ExerciseError, match="NOT DONE YET"):
        check(blank, mean_loss, CASES, name="f", strict=True)
    with pytest.raises(ExerciseError, match="WRONG"):
        check(wrong, mean_loss, CASES, name="f", strict="wrong")
    assert check(blank, mean_loss, CASES, name="f", strict="wrong").status == "not done"
    monkeypatch.setenv("COURSE_LIB_STRICT_CHECKS", "1")
    with pytest.raises(ExerciseError):
        check(blank, mean_loss, CASES, name="f")
    monkeypatch.setenv("COURSE_LIB_STRICT_CHECKS", "0")
    assert not check(wrong, mean_loss, CASES, name="f")
    monkeypatch.setenv("COURSE_LIB_STRICT_CHECKS", "sometimes")
    with pytest.raises(ValueError, match="COURSE_LIB_STRICT_CHECKS"):
        check(wrong, mean_loss, CASES, name="f")
