"""Whether a student shares its teacher's tokenizer, and the encoder of the students' training windows.

Layer-to-layer terms compare token positions, so they need one tokenizer for both models.
"""

from __future__ import annotations

from typing import Any

from distill.errors import DistillError


def shares_tokenizer(student_tokenizer: Any, teacher_tokenizer: Any) -> bool:
    """Whether one window's input_ids mean the same tokens to both: the same vocabulary and specials."""
    if student_tokenizer is teacher_tokenizer:
        return True
    same_specials = student_tokenizer.build_inputs_with_special_tokens(
        [-1]
    ) == teacher_tokenizer.build_inputs_with_special_tokens([-1])
    return same_specials and student_tokenizer.get_vocab() == teacher_tokenizer.get_vocab()


NEEDS_SHARED_TOKENIZER = (
    "layer-to-layer distillation (--hidden-weight, --attention-weight) needs a student that shares the "
    "teacher's tokenizer (e.g. --student teacher:6); use the word-level terms (--alpha, --feature-weight)"
)


def check_tokenizers(student: str, teacher: str, teacher_tokenizer: Any | None = None) -> None:
    """Refuse layer matching between models that tokenise differently, before anything is trained.

    Tokenizers load in a moment; a refusal after the teacher's fine-tuning would waste it. The tiny
    preset's tokenizers are trained per model (BPE teacher, WordPiece student), so never shared.
    `teacher_tokenizer`: the loaded teacher's, where the run already has it (--teacher-dir).
    """
    from distill.config import TINY
    from distill.models import load_tokenizer

    if TINY in (teacher, student):
        raise DistillError(NEEDS_SHARED_TOKENIZER + "; the tiny preset trains one tokenizer per model")
    try:
        same = shares_tokenizer(load_tokenizer(student), teacher_tokenizer or load_tokenizer(teacher))
    except (OSError, ValueError):
        return  # not loadable here: loading the models reports it with the fuller message
    if not same:
        raise DistillError(NEEDS_SHARED_TOKENIZER + f": {student} and {teacher} tokenise differently")


def training_encoder(student: Any, teacher: Any | None, max_length: int, stride: int) -> Any:
    """The encoder of the students' training windows.

    The student's own, except where a `teacher` runs in the loss and reads fields the student does
    not (boxes, the page image): then the teacher's, whose windows are the same tokens (a shared
    tokenizer) with those fields added; each model takes only its own inputs from the batch.
    """
    if teacher is not None:
        from distill.predict import model_input_names

        if set(model_input_names(teacher.model)) - set(model_input_names(student.model)):
            return teacher.encoder(max_length, stride)
    return student.encoder(max_length, stride)
