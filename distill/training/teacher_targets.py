"""The teacher's word-level targets for distillation, computed once and cached in the run directory.

Per form, one row per word: the teacher's logits and, for feature distillation, its word vector
(last hidden state at the word's first sub-token), both window-merged exactly as evaluation merges
logits. The teacher is frozen, so these are exact and computed once; the cache makes a resumed
run (or a second student of the same run) skip the teacher pass. It is keyed by everything the
rows depend on: the teacher's weights, the encoding, the forms (ids, words, boxes and page images)
and whether vectors are included.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch

from distill import atomic
from distill.errors import DistillError
from distill.hardware import isa_name
from distill.models import Bundle
from distill.predict import TorchBackend, predict_word_logits
from distill.predict.loading import load_predictor, recommended_cpu_variant
from distill.predict.predictor import id2label_list

CACHE_DIR = "teacher-cache"


def compute_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def word_targets(
    bundle: Bundle,
    forms: datasets.Dataset,
    max_length: int,
    stride: int,
    batch_size: int,
    desc: str,
    with_vectors: bool = False,
) -> list[np.ndarray]:
    """Per form, [words, labels] logits, or [words, labels + hidden] with the word vectors."""
    backend = TorchBackend(bundle.model, compute_device(), hidden=with_vectors)
    return predict_word_logits(
        bundle.encoder(max_length, stride), backend, forms, batch_size, progress=desc, total=len(forms)
    )


def ensemble_targets(
    members: Sequence[Bundle],
    forms: datasets.Dataset,
    max_length: int,
    stride: int,
    batch_size: int,
    desc: str,
    with_vectors: bool = False,
) -> list[np.ndarray]:
    """The members' word targets, averaged form by form.

    Word-level targets make this possible across models that tokenise differently: every member
    yields one row per word, whatever its sub-tokens. Word vectors are one model's own space, so
    they come from a single teacher only.
    """
    if with_vectors and len(members) > 1:
        raise DistillError("feature distillation needs one teacher, not an ensemble (--teacher-dir A,B)")
    per_member = [
        word_targets(
            m, forms, max_length, stride, batch_size, f"{desc} ({i + 1}/{len(members)})", with_vectors
        )
        for i, m in enumerate(members)
    ]
    if len(members) == 1:
        return per_member[0]
    return [np.mean(np.stack(rows), axis=0) for rows in zip(*per_member, strict=True)]


def model_digest(model: torch.nn.Module) -> str:
    """A hash of a model's weights and config: the same for every DDP rank and for a copy elsewhere.

    Hashing the weights themselves (about a second for a base-size model) rather than the files
    lets a rank key the cache before rank 0 has saved the model, and a copy of a teacher in
    another run directory find the same targets.
    """
    digest = hashlib.sha256(model.config.to_json_string().encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(
    members: Sequence[Bundle],
    forms: datasets.Dataset,
    max_length: int,
    stride: int,
    with_vectors: bool,
    exported: ExportedTeacher | None = None,
) -> str:
    digest = hashlib.sha256()
    for member in members:
        digest.update(model_digest(member.model).encode())
    if exported is not None:  # another variant, or another CPU, gives other numbers
        digest.update(json.dumps([exported.variant, exported.isa]).encode())
    digest.update(json.dumps([max_length, stride, with_vectors]).encode())
    digest.update(json.dumps(list(forms["id"])).encode())
    digest.update(json.dumps(list(forms["tokens"])).encode())
    # A layout teacher reads the boxes and the page: the same words elsewhere give other targets.
    digest.update(json.dumps(list(forms["bboxes"])).encode())
    for image in image_digests(forms):
        digest.update(image.encode())
    return digest.hexdigest()[:16]


def image_digests(forms: datasets.Dataset) -> list[str]:
    """A digest of each form's page image as stored (its bytes, or the file it names), without decoding.

    A transfer set repeats its forms' pages, so each file is read once.
    """
    if "image" not in forms.column_names:
        return ["" for _ in range(len(forms))]
    seen: dict[str, str] = {}
    out = []
    for image in forms.cast_column("image", datasets.Image(decode=False))["image"]:
        if image is None:
            out.append("")
            continue
        data, path = image.get("bytes"), image.get("path")
        if data is None and path:
            if path not in seen:
                seen[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            out.append(seen[path])
        else:
            out.append(hashlib.sha256(data or b"").hexdigest())
    return out


@dataclass(frozen=True)
class ExportedTeacher:
    """The exported variant of a teacher that labels the transfer set in its place (see exported_teacher)."""

    path: Path  # the variant's directory
    variant: str  # its name in the manifest, e.g. openvino-int8
    isa: str  # the CPU it runs on (OpenVINO's default precision differs by CPU)

    def describe(self) -> str:
        return f"{self.variant} on {self.isa}"


def exported_teacher(teacher_dirs: Sequence[str], with_vectors: bool) -> ExportedTeacher | None:
    """The export's recommended CPU variant of a single teacher reused from a run (--teacher-dir
    RUN/teacher, RUN exported), or None: then the PyTorch teacher labels the forms.

    The export recommends only a variant that passed its gates (F1 within budget, word agreement),
    and on a 2-core EPYC the MPNet teacher in OpenVINO served 4.5 forms/s against 1.1 in PyTorch. Word
    vectors (feature distillation) are PyTorch's alone: the exported graphs output logits only.
    """
    if len(teacher_dirs) != 1 or with_vectors:
        return None
    found = recommended_cpu_variant(Path(teacher_dirs[0]).parent, "teacher")
    return ExportedTeacher(found[0], found[1], isa_name()) if found is not None else None


def exported_targets(
    teacher: ExportedTeacher, forms: datasets.Dataset, config: Any, labels: Sequence[str]
) -> list[np.ndarray]:
    """The word logits of an exported teacher, through the prediction API (never the export package)."""
    predictor = load_predictor(teacher.path, config.max_length, config.stride, config.eval_batch_size)
    if list(predictor.labels) != list(labels):
        raise DistillError(
            f"the exported teacher's labels {predictor.labels} are not its model's {list(labels)}",
            teacher.path,
        )
    return predict_word_logits(predictor.encoder, predictor.backend, forms, predictor.batch_size,
                               progress=f"caching teacher targets ({teacher.variant})", total=len(forms))  # fmt: skip


def cached_targets(
    run: Path,
    members: Sequence[Bundle],
    forms: datasets.Dataset,
    config: Any,
    with_vectors: bool,
    write: bool = True,
    exported: ExportedTeacher | None = None,
) -> tuple[list[np.ndarray], bool]:
    """The teacher's word targets for `forms`, from the run's cache or computed (and cached).

    Returns the targets and whether they came from the cache. `write` is False on DDP ranks
    other than 0: every rank computes or reads, only rank 0 writes. `exported`: the teacher's
    exported variant computes them instead of its PyTorch model (the key names it and the CPU's ISA).
    """
    key = cache_key(members, forms, config.max_length, config.stride, with_vectors, exported)
    path = run / CACHE_DIR / f"{key}.npz"
    if path.is_file():
        with np.load(path) as saved:
            return [saved[str(i)] for i in range(len(forms))], True
    if exported is not None:
        targets = exported_targets(exported, forms, config, id2label_list(members[0].model.config))
    else:
        targets = ensemble_targets(
            members,
            forms,
            config.max_length,
            config.stride,
            config.eval_batch_size,
            "caching teacher targets",
            with_vectors,
        )
    if write:
        buffer = io.BytesIO()
        np.savez(buffer, **{str(i): t.astype(np.float32) for i, t in enumerate(targets)})
        atomic.write_bytes(path, buffer.getvalue())
    return targets, False
