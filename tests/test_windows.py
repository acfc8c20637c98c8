import numpy as np
import pytest

from distill.builders import tiny_student, tiny_teacher
from distill.data.synthetic import make_synthetic
from distill.predict import TorchBackend, predict_word_logits
from distill.schema import FUNSD_LABELS
from distill.windows import merge_word_logits, plan_windows

CORPUS = "Date Name Phone Company Amount Total Reynolds Tobacco Winston Salem invoice approved".split() * 30
FORM = "Reynolds-Winston approved invoice Tobacco: 12/03/1998 Supercalifragilistic Name Total".split()


@pytest.fixture(scope="module")
def models():
    return tiny_teacher(CORPUS, FUNSD_LABELS), tiny_student(CORPUS, FUNSD_LABELS)


def test_windows_cover_every_word_within_capacity() -> None:
    counts = [1, 3, 2, 5, 1, 1, 4, 2, 2, 1, 7, 1] * 10
    spans = plan_windows(counts, capacity=12, stride=4)
    covered = set()
    for a, b in zip(spans, spans[1:], strict=False):
        assert b.start > a.start, "every window must move forward"
        assert b.start < a.end, "consecutive windows overlap"
    for span in spans:
        assert sum(counts[span.start : span.end]) <= 12
        covered.update(range(span.start, span.end))
    assert covered == set(range(len(counts)))


def check_plan(counts: list[int], capacity: int, stride: int) -> None:
    spans = plan_windows(counts, capacity, stride)
    pairs = [(s.start, s.end) for s in spans]
    covered = [w for s in spans for w in range(s.start, s.end)]
    assert set(covered) == set(range(len(counts))), f"a word is in no window: {pairs}"
    for s in spans:
        assert s.end > s.start
        assert s.end - s.start == 1 or sum(counts[s.start : s.end]) <= capacity, f"over capacity: {pairs}"
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            inside = a.start <= b.start and b.end <= a.end or b.start <= a.start and a.end <= b.end
            assert not inside, f"window {b} lies inside {a} (or the reverse): {pairs}"
    for a, b in zip(spans, spans[1:], strict=False):
        assert b.start > a.start and b.end > a.end, f"windows must move forward: {pairs}"
        assert sum(counts[b.start : a.end]) <= max(stride, counts[a.end - 1]), f"overlap > stride: {pairs}"
        if stride == 0:
            assert b.start == a.end, f"stride 0 must not overlap: {pairs}"


def test_the_reported_subset_window() -> None:
    # Word lengths 3,4,2,6,3 at capacity 6 used to give [1,3) and then [2,3), a window inside the last.
    for stride in (0, 1, 2, 4, 5):
        check_plan([3, 4, 2, 6, 3], capacity=6, stride=stride)


def test_stride_zero_means_disjoint_windows() -> None:
    spans = plan_windows([1] * 10, capacity=4, stride=0)
    assert [(s.start, s.end) for s in spans] == [(0, 4), (4, 8), (8, 10)]


def test_windows_hold_for_random_forms() -> None:
    """Property check over many random forms: coverage, capacity, no window inside another, stride."""
    rng = np.random.default_rng(0)
    for _ in range(3000):
        capacity = int(rng.integers(1, 20))
        stride = int(rng.integers(0, capacity))
        counts = rng.integers(1, capacity + 4, size=int(rng.integers(0, 40))).tolist()
        check_plan(counts, capacity, stride)


def test_a_form_without_words_has_no_windows(models) -> None:
    assert plan_windows([], capacity=8, stride=2) == []
    _, student = models
    assert student.encoder(16, 4).encode_form([], [], tags=[]) == []


def test_over_long_word_gets_its_own_window() -> None:
    spans = plan_windows([2, 50, 2], capacity=10, stride=3)
    assert [(s.start, s.end) for s in spans] == [(0, 1), (1, 2), (2, 3)]


def test_teacher_logits_sit_at_the_students_first_subtoken_of_the_same_word(models) -> None:
    teacher, student = models
    t_enc, s_enc = teacher.encoder(16, 4), student.encoder(16, 4)
    boxes = [[10 * i, 10, 10 * i + 9, 20] for i in range(len(FORM))]
    t_counts = [len(t) for t in t_enc.word_token_ids(FORM, boxes)]
    s_counts = [len(t) for t in s_enc.word_token_ids(FORM, None)]
    assert t_counts != s_counts, "the test needs words that the two tokenisers split differently"
    targets = np.arange(len(FORM) * 7, dtype=np.float32).reshape(len(FORM), 7)  # a distinct row per word
    windows = s_enc.encode_form(FORM, boxes, tags=[0] * len(FORM), word_targets=targets)
    assert len(windows) > 1
    seen = set()
    for window in windows:
        ids, word_index, soft = window["input_ids"], window["word_index"], window["teacher_logits"]
        for pos in np.nonzero(word_index >= 0)[0]:
            word = int(word_index[pos])
            np.testing.assert_array_equal(soft[pos], targets[word])
            # The position holds the word's first sub-token, in the student's own tokenisation.
            assert ids[pos] == s_enc.word_token_ids([FORM[word]], None)[0][0]
            seen.add(word)
        assert not soft[word_index < 0].any(), "targets only at first sub-tokens"
        assert (window["labels"][word_index < 0] == -100).all()
    assert seen == set(range(len(FORM)))


def test_merge_takes_each_word_from_the_window_where_it_is_most_central() -> None:
    # Two windows over words 0..3: [0,1,2] and [1,2,3]; word 1 is central in neither edge-wise equally,
    # word 2 sits in the middle of the second window.
    w1 = {"word_index": np.array([-1, 0, 1, 2, -1]), "attention_mask": np.ones(5, int)}
    w2 = {"word_index": np.array([-1, 1, 2, 3, -1]), "attention_mask": np.ones(5, int)}
    l1 = np.zeros((5, 7), np.float32)
    l2 = np.ones((5, 7), np.float32)
    merged = merge_word_logits([w1, w2], [l1, l2], 4)
    assert merged[0].sum() == 0  # only in window 1
    assert merged[3].sum() == 7  # only in window 2
    assert merged[1].sum() == 0  # middle of window 1, edge of window 2
    assert merged[2].sum() == 7  # edge of window 1, middle of window 2


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_3000_word_form_loses_no_word(which: str) -> None:
    data = make_synthetic(num_train=1, num_test=1, max_words=3000, seed=3)
    form = max((data["train"][0], data["test"][0]), key=lambda f: len(f["tokens"]))
    form = {**form, "tokens": (form["tokens"] * 3)[:3000], "bboxes": (form["bboxes"] * 3)[:3000]}
    assert len(form["tokens"]) == 3000
    bundle = (
        tiny_teacher(form["tokens"], FUNSD_LABELS)
        if which == "teacher"
        else tiny_student(form["tokens"], FUNSD_LABELS)
    )
    encoder = bundle.encoder(128, 32)
    windows = encoder.encode_form(form["tokens"], form["bboxes"], form["image"], [0] * 3000)
    firsts = np.concatenate([w["word_index"][w["word_index"] >= 0] for w in windows])
    assert set(firsts.tolist()) == set(range(3000))
    assert all(len(w["input_ids"]) <= 128 for w in windows)
    (logits,) = predict_word_logits(encoder, TorchBackend(bundle.model), [form], batch_size=16)
    assert logits.shape == (3000, 7)
