"""The registered notebook exercises (course_lib.course.exercise_bank): each common slip, written as a student
would write it, gets its hint; the instructors' solutions are RIGHT; a check cell run alone says what to run."""

import math

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import trapezoid

from course_lib.cli.editions import SOURCE_DIR
from course_lib.core.errors import CourseLibError
from course_lib.course import exercise_bank
from course_lib.course.exercises import check
from course_lib.grading import markup


def verdict(name, student, capsys):
    result = check(name, student, strict=False)
    return result, capsys.readouterr().out


# ------------------------------------------------------------------------------------ the slips students make
def sig(a):
    return 1 / (1 + np.exp(-a))


def gen_grad_non_saturating(z, theta, phi):
    s = sig(phi[0] + phi[1] * (z + theta))
    return float(-np.mean((1 - s) * phi[1]))


def gen_grad_no_chain_rule(z, theta, phi):
    return float(-np.mean(sig(phi[0] + phi[1] * (z + theta))))


def d_star_upside_down(p_real, p_gen):
    total = p_real + p_gen
    return np.where(total > 0, p_gen / np.where(total > 0, total, 1.0), 0.5)


def d_star_unguarded(p_real, p_gen):
    with np.errstate(invalid="ignore"):
        return p_real / (p_real + p_gen)


def kl_terms(a, m):
    out = np.zeros_like(a)
    out[a > 0] = a[a > 0] * np.log(a[a > 0] / m[a > 0])
    return out


def js_first_half_only(p, q, x):
    return 0.5 * trapezoid(kl_terms(p, (p + q) / 2), x)


def js_plain_sum(p, q, x):
    m = (p + q) / 2
    return 0.5 * np.sum(kl_terms(p, m)) + 0.5 * np.sum(kl_terms(q, m))


def plan_cost_signed(plan):
    i, j = np.indices(plan.shape)
    return float(np.sum(plan * (i - j)))


def plan_cost_squared(plan):
    i, j = np.indices(plan.shape)
    return float(np.sum(plan * (i - j) ** 2))


def plan_cost_square_plan(plan):  # the slip of issue 29: the cost matrix built n x n
    n = len(plan)
    cost = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    return float(np.sum(plan * cost))


def w1_unsorted(a, b):
    return float(np.mean(np.abs(a - b)))


def w1_one_sorted(a, b):
    return float(np.mean(np.abs(np.sort(a) - b)))


def hq_no_min(samples, centres, std):
    d = np.linalg.norm(samples[:, None] - centres[None], axis=-1)
    return float((d <= 3 * std).mean())


def hq_one_std(samples, centres, std):
    d = np.linalg.norm(samples[:, None] - centres[None], axis=-1)
    return float((d.min(axis=1) <= std).mean())


def gp_batch_norm(critic, real, fake, alpha):
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.norm() - 1) ** 2


def gp_at_real(critic, real, fake, alpha):
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def d_loss_swapped(real_logits, fake_logits):
    return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()


def d_loss_naive_log(real_logits, fake_logits):
    return -(torch.log(torch.sigmoid(real_logits)).mean() + torch.log(1 - torch.sigmoid(fake_logits)).mean())


def size_of_convolution(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def size_one_padding(size, kernel, stride, padding):
    return (size - 1) * stride - padding + kernel


def size_times_stride(size, kernel, stride, padding):
    return size * stride - 2 * padding + kernel


def poly_kernel(a, b):
    return (a @ b.T / a.shape[1] + 1) ** 3


def mmd_biased(x, y):
    return float(poly_kernel(x, x).mean() + poly_kernel(y, y).mean() - 2 * poly_kernel(x, y).mean())


def mmd_diagonal_out_over_m_squared(x, y):  # the slip of issue 29
    m = x.shape[0]
    k_xx, k_yy = poly_kernel(x, x), poly_kernel(y, y)
    np.fill_diagonal(k_xx, 0)
    np.fill_diagonal(k_yy, 0)
    return float((k_xx.sum() + k_yy.sum()) / m**2 - 2 * poly_kernel(x, y).sum() / m**2)


def mmd_no_dimension(x, y):
    m = x.shape[0]
    k = lambda a, b: (a @ b.T + 1) ** 3  # noqa: E731
    k_xx, k_yy = k(x, x), k(y, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k(x, y).sum() / m**2)


def balls(points, centres, index):
    d_cc = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    radii = np.sort(d_cc, axis=1)[:, index]
    d_pc = np.linalg.norm(points[:, None] - centres[None], axis=2)
    return float(np.mean((d_pc <= radii[None, :]).any(axis=1)))


def precision_k_minus_one(generated, real, k=3):
    return balls(generated, real, k - 1)


def precision_is_recall(generated, real, k=3):
    return balls(real, generated, k)


def smoothed_both_sides(real_logits, fake_logits, real_target=0.9):
    real = real_target * F.softplus(-real_logits) + (1 - real_target) * F.softplus(real_logits)
    fake = real_target * F.softplus(fake_logits) + (1 - real_target) * F.softplus(-fake_logits)
    return real.mean() + fake.mean()


def smoothed_ignores_target(real_logits, fake_logits, real_target=0.9):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def ignored_one_component(tau, d):
    return math.erfc(tau / math.sqrt(2))


def ignored_union_bound(tau, d):
    return d * math.erfc(tau / math.sqrt(2))


def ignored_one_tail(tau, d):
    p = 0.5 * math.erfc(tau / math.sqrt(2))
    return 1 - (1 - p) ** d


def interpolate_everything(prev, cur, r):
    return {k: prev[k] + r * (cur[k].double() - prev[k]) for k in cur}


def interpolate_backwards(prev, cur, r):
    return {k: cur[k] + r * (prev[k] - cur[k]) if cur[k].is_floating_point() else cur[k].clone() for k in cur}


def label_maps_first(images, labels, n_classes=10):
    maps = F.one_hot(labels, n_classes).float()[:, :, None, None].expand(-1, -1, 28, 28)
    return torch.cat([maps, images], dim=1)


def label_maps_not_expanded(images, labels, n_classes=10):
    one_hot = F.one_hot(labels, n_classes).float()
    return torch.cat([images, one_hot[:, :, None, None]], dim=1)


def field_from_the_input(layers):
    r = 1
    for stride in [2] * layers + [1, 1]:
        r = stride * r + (4 - stride)
    return r


def field_without_the_last_layers(layers):
    r = 1
    for _ in range(layers):
        r = 2 * r + 2
    return r


def cycle_one_pass(generator, domains):
    return (generator(domains) - domains).abs().mean()


def cycle_squared(generator, domains):
    return ((generator(generator(domains)) - domains) ** 2).mean()


def modulate(x, weight, style, norm_dims):
    out = []
    for i in range(len(x)):
        w = weight * style[i][None, :, None, None]
        if norm_dims:
            w = w / torch.sqrt(w.pow(2).sum(dim=norm_dims, keepdim=True) + 1e-8)
        out.append(F.conv2d(x[i : i + 1], w, padding=1))
    return torch.cat(out)


def modconv_never_demodulates(x, weight, style, demodulate=True):
    return modulate(x, weight, style, None)


def modconv_always_demodulates(x, weight, style, demodulate=True):
    return modulate(x, weight, style, (1, 2, 3))


def modconv_input_channel_norm(x, weight, style, demodulate=True):
    return modulate(x, weight, style, (0, 2, 3) if demodulate else None)


def mix_swapped(w1, w2, crossover, num_ws):
    ws = w1[:, None, :].repeat(1, num_ws, 1)
    ws[:, :crossover] = w2[:, None, :]
    return ws


def mix_one_too_many(w1, w2, crossover, num_ws):
    ws = w2[:, None, :].repeat(1, num_ws, 1)
    ws[:, : crossover + 1] = w1[:, None, :]
    return ws


SLIPS = [  # (exercise, slip, the start of the hint it must get)
    ("my_generator_grad", gen_grad_non_saturating, "that is the gradient of the non-saturating loss"),
    ("my_generator_grad", gen_grad_no_chain_rule, "the chain rule through f(x*)"),
    ("my_optimal_discriminator", d_star_upside_down, "D* is the probability that x is *real*"),
    ("my_optimal_discriminator", d_star_unguarded, "where both densities are 0 the fraction is 0/0"),
    ("my_js_divergence", js_first_half_only, "D_JS has two halves"),
    ("my_js_divergence", js_plain_sum, "integrate with trapezoid"),
    ("my_plan_cost", plan_cost_signed, "moving mass costs the distance |i - j|, which is never negative"),
    ("my_plan_cost", plan_cost_squared, "W1 costs |i - j| per unit of mass"),
    ("my_plan_cost", plan_cost_square_plan, "a plan need not be square"),
    ("my_wasserstein_samples", w1_unsorted, "sort both samples first"),
    ("my_wasserstein_samples", w1_one_sorted, "you sorted only one of the two samples"),
    ("my_high_quality_fraction", hq_no_min, "for each sample take the distance to its *nearest* centre"),
    ("my_high_quality_fraction", hq_one_std, "the quality zone reaches 3 standard deviations"),
    ("my_gradient_penalty", gp_batch_norm, "take one gradient norm per sample"),
    ("my_gradient_penalty", gp_at_real, "evaluate the gradient at the interpolates"),
    ("my_discriminator_loss", d_loss_swapped, "the labels are swapped"),
    ("my_discriminator_loss", d_loss_naive_log, "log of a probability rounded to 0 or 1"),
    ("my_transposed_size", size_of_convolution, "that is the size an ordinary (down-sampling) convolution gives"),
    ("my_transposed_size", size_one_padding, "padding is cropped from both borders"),
    ("my_transposed_size", size_times_stride, "the input pixels are spread `stride` apart"),
    ("mmd2", mmd_biased, "leave out the i = j terms"),
    ("mmd2", mmd_diagonal_out_over_m_squared, "you removed the i = j terms but still divide by m²"),
    ("mmd2", mmd_no_dimension, "the kernel divides the dot product by the dimension d"),
    ("my_precision", precision_k_minus_one, "the nearest point to a real point is itself"),
    ("my_precision", precision_is_recall, "precision puts the balls around the *real* points"),
    ("my_smoothed_discriminator_loss", smoothed_both_sides, "one-sided: only the real images' target moves"),
    ("my_smoothed_discriminator_loss", smoothed_ignores_target, "your loss does not use real_target"),
    ("ignored_fraction", ignored_one_component, "that is one component"),
    ("ignored_fraction", ignored_union_bound, "the components are independent"),
    ("ignored_fraction", ignored_one_tail, "|z_i| > tau has two tails"),
    ("my_interpolate_states", interpolate_everything, "integer entries (num_batches_tracked"),
    ("my_interpolate_states", interpolate_backwards, "the direction is reversed"),
    ("my_label_maps", label_maps_first, "put the image channel first"),
    ("my_label_maps", label_maps_not_expanded, "each label becomes ten constant maps of the image's size"),
    ("my_receptive_field", field_from_the_input, "go backwards from the output"),
    ("my_receptive_field", field_without_the_last_layers, "the PatchGAN also has two stride-1 layers"),
    ("my_cycle_loss", cycle_one_pass, "translate twice"),
    ("my_cycle_loss", cycle_squared, "this is the squared error"),
    ("my_modulated_conv", modconv_never_demodulates, "with demodulate=True each output channel's"),
    ("my_modulated_conv", modconv_always_demodulates, "with demodulate=False the weights are only modulated"),
    ("my_modulated_conv", modconv_input_channel_norm, "demodulation normalises each *output* channel"),
    ("my_mix", mix_swapped, "style inputs 0 .. crossover-1 come from w1"),
    ("my_mix", mix_one_too_many, "w1 fills the first `crossover` style inputs"),
]


@pytest.mark.parametrize(("name", "slip", "hint"), SLIPS, ids=[f"{n}-{s.__name__}" for n, s, _ in SLIPS])
def test_each_slip_gets_its_hint(name, slip, hint, capsys):
    result, out = verdict(name, slip, capsys)
    assert result.status == "wrong", out
    assert f"hint: {hint}" in out, out


def test_every_registered_hint_has_a_slip_here():
    slipped = {(name, h) for name, _, h in SLIPS}
    for name, exercise in exercise_bank.all_exercises().items():
        for hint in (*exercise.mistakes, *exercise.error_hints):
            assert any(n == name and hint.startswith(h) for n, h in slipped), f"{name}: no slip tests {hint!r}"


def test_the_square_plan_slip_that_raises_names_the_case_and_gets_the_hint(capsys):
    _, out = verdict("my_plan_cost", plan_cost_square_plan, capsys)
    assert "case 2 (plan = array (4, 6) float64): raised ValueError" in out  # the 4x6 plan cannot broadcast
    assert out.count("hint: a plan need not be square") == 2  # case 3, the 1x5 plan, broadcasts: a wrong value


def test_a_wrong_answer_names_the_inputs_of_the_failing_case(capsys):
    _, out = verdict("my_cycle_loss", cycle_squared, capsys)
    assert "case 0 (generator = function _swap_halves, domains = tensor (2, 1, 28, 28) float32)" in out
    _, out = verdict("ignored_fraction", ignored_one_tail, capsys)
    assert "case 0 (tau = 2.0, d = 100)" in out


# ------------------------------------------------------------------------------------------- the registry
def solution_functions():
    """{exercise name: the instructor's solution, run from solutions/}: the functions the check cells check."""
    namespace = {"np": np, "torch": torch, "F": F, "math": math, "trapezoid": trapezoid}
    found = {}
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if markup.kind_of(cell).solution:
                before = set(namespace)
                exec(markup.source_of(cell), namespace)
                found.update({k: namespace[k] for k in set(namespace) - before if callable(namespace[k])})
    return found


def test_the_index_lists_exactly_the_registered_exercises_and_the_solutions_are_right(capsys):
    registered = exercise_bank.all_exercises()
    assert sorted(registered) == sorted(exercise_bank.INDEX)
    solutions = solution_functions()
    for name in registered:
        assert name in solutions, f"{name} is registered but no solution cell in solutions/ defines it"
        assert check(name, solutions[name], strict=True), capsys.readouterr().out


def test_a_check_run_alone_in_a_fresh_kernel_says_what_to_run(capsys):
    namespace = {}
    exec("from course_lib.course.exercises import check\nresult = check('my_receptive_field')", namespace)
    out = capsys.readouterr().out
    assert namespace["result"].status == "not done"
    assert out.startswith("NOT DONE YET: my_receptive_field is not defined in this kernel")
    assert "Run > Run All Above" in out and "course_lib.nn.translation.patch_receptive_field" in out


def test_a_function_missing_a_setup_name_is_told_to_run_the_cells_above(capsys):
    namespace = {}
    exec("def my_transposed_size(size, kernel, stride, padding):\n    return undefined_name\n", namespace)
    _, out = verdict("my_transposed_size", namespace["my_transposed_size"], capsys)
    assert "raised NameError" in out and "Run > Run All Above" in out


def test_an_unknown_exercise_is_one_clear_error():
    with pytest.raises(CourseLibError, match="no exercise called 'my_typo'; the exercises are: ignored_fraction"):
        check("my_typo")


def test_every_check_cell_of_the_student_edition_run_alone_in_a_fresh_kernel_prints_a_message(capsys):
    """Issue 29: after a kernel restart a check cell says what to run, never a traceback."""
    from course_lib.cli.editions import STUDENT_DIR, is_check_cell

    ran = 0
    for path in sorted(STUDENT_DIR.glob("*.ipynb")):
        for cell in filter(is_check_cell, nbformat.read(path, as_version=4).cells):
            exec(cell.source, {"__name__": "__main__"})  # a fresh namespace: nothing of the notebook has run
            out = capsys.readouterr().out
            assert out.startswith("NOT DONE YET:") and "Run > Run All Above" in out, (path.name, out)
            ran += 1
    assert ran == len(exercise_bank.INDEX)


def test_check_finds_the_students_function_in_the_namespace_it_is_called_from(capsys):
    namespace = {"__name__": "__main__"}
    exec(
        "from course_lib.course.exercises import check\n"
        "def my_transposed_size(size, kernel, stride, padding):\n"
        "    return (size - 1) * stride - 2 * padding + kernel\n"
        "result = check('my_transposed_size')\n",
        namespace,
    )
    assert namespace["result"].status == "right" and capsys.readouterr().out.startswith("RIGHT: my_transposed_size")
    namespace["my_transposed_size"] = 42  # a name that is not a function
    exec("result = check('my_transposed_size')", namespace)
    assert capsys.readouterr().out.startswith("NOT DONE YET: my_transposed_size is not a function")
